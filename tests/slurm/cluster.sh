#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for tests/test_slurm.py: Debian's slurm-wlm and munge,
# daemons as root. It keeps its own config, state, logs and ports under $SLURM_TEST_DIR (default
# /tmp/seqmodels-slurm) and never touches /etc/slurm, so a real cluster's setup is left alone;
# clients find it through SLURM_CONF=$SLURM_TEST_DIR/slurm.conf.
#
#   bash tests/slurm/cluster.sh start   # installs the packages when missing, starts what isn't running
#   bash tests/slurm/cluster.sh stop    # stops the daemons this script started (by their pids)
#
# Exit status 77: SLURM can't be installed or started here (the tests skip, giving the last line).
set -uo pipefail
DIR=${SLURM_TEST_DIR:-/tmp/seqmodels-slurm}
CONF=$DIR/slurm.conf
skip() { echo "$*" >&2; exit 77; }

stop() {
    for name in slurmd slurmctld munged; do
        pid=$(cat "$DIR/$name.started" 2>/dev/null) || continue
        kill "$pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
        rm -f "$DIR/$name.started"
    done
}

running() {  # the pid in a daemon's pid file is alive
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

start() {
    if [ "$(id -u)" != 0 ]; then
        skip "the test cluster's daemons run as root (this is uid $(id -u))"
    fi
    if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
        command -v apt-get >/dev/null || skip "no slurmctld/munged and no apt-get to install slurm-wlm and munge"
        { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends slurm-wlm munge; } >"$DIR.install.log" 2>&1 \
            || skip "apt-get install slurm-wlm munge failed (see $DIR.install.log)"
    fi
    mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log" /run/munge /var/log/munge /var/lib/munge
    if [ ! -f /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge 2>/dev/null
    chmod 400 /etc/munge/munge.key
    host=$(hostname -s)
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    # Short waits so the tests are quick: a requeued job may start again after cred_expire
    # seconds (SLURM's default 120), a killed one gets SIGKILL KillWait seconds after SIGTERM.
    # 4 CPUs whatever the machine has (config_overrides), so the tests' jobs run side by side.
    cat >"$CONF.new" <<CONF
ClusterName=seqmodels-test
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
MailProg=/bin/true
MpiDefault=none
AuthInfo=cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmdSpoolDir=$DIR/spool
StateSaveLocation=$DIR/state
SlurmUser=root
SlurmdParameters=config_overrides
ReturnToService=2
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
KillWait=10
MinJobAge=600
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=$host CPUs=4 RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    changed=1
    cmp -s "$CONF.new" "$CONF" && changed=0
    mv "$CONF.new" "$CONF"
    if [ "$changed" = 1 ]; then stop; fi  # daemons of an older config
    if ! pgrep -x munged >/dev/null; then
        if [ -x /usr/sbin/munged ]; then MUNGED=/usr/sbin/munged; else MUNGED=munged; fi
        $MUNGED --force 2>"$DIR/log/munged.err" \
            || skip "munged does not start: $(cat "$DIR/log/munged.err")"
        pgrep -x -n munged >"$DIR/munged.started"
    fi
    export SLURM_CONF=$CONF
    if ! running "$DIR/slurmctld.pid"; then
        slurmctld -c -f "$CONF" || skip "slurmctld does not start (see $DIR/log/slurmctld.log)"
        for _ in $(seq 50); do running "$DIR/slurmctld.pid" && break; sleep 0.1; done
        cp "$DIR/slurmctld.pid" "$DIR/slurmctld.started"
    fi
    if ! running "$DIR/slurmd.pid"; then
        slurmd -f "$CONF" || skip "slurmd does not start (see $DIR/log/slurmd.log)"
        for _ in $(seq 50); do running "$DIR/slurmd.pid" && break; sleep 0.1; done
        cp "$DIR/slurmd.pid" "$DIR/slurmd.started"
    fi
    for _ in $(seq 60); do  # the node registers and comes up idle
        state=$(sinfo -h -N -o %t 2>/dev/null | head -1)
        case "$state" in idle | mix | alloc) echo "$CONF"; return 0 ;; esac
        sleep 0.5
    done
    skip "the SLURM node is not up (state '${state:-none}'; see $DIR/log/)"
}

mkdir -p "$DIR"
case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
