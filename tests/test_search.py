"""Hyperparameter search and multiruns that survive failures: failed and pruned trials, a killed
search resumed, two workers on one PostgreSQL study, odd swept values, DDP refused in multiruns."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from seqmodels.errors import ConfigError
from seqmodels.sweeps import folders, multirun
from seqmodels.sweeps.search import override_value, search_space
from seqmodels.sweeps.summarize import SummaryCallback

from .helpers import (
    CONF,
    ROOT,
    assert_ok,
    job_metrics,
    jobs_failed_line,
    last_line,
    read_rows,
    run_sweep,
    run_train,
    write_parquet_dir,
)

QUICK = ("threads=1", "trainer.enable_progress_bar=false")


def load_study(sweep: Path, name: str = "lstm_sine") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{sweep / 'optuna.db'}")


def train_command(*overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *overrides]


# --- Failed and pruned trials ---------------------------------------------------------------


@pytest.mark.e2e
def test_a_failed_trial_is_recorded_as_failed_and_the_search_goes_on(tmp_path):
    sweep, result = run_sweep(
        "hparams_search=lstm_sine",
        "hydra.sweeper.n_trials=4",
        "task.datamodule.n_points=choice(5,120)",  # 5 points can't hold a 10-step window
        "trainer.max_epochs=2",
        *QUICK,
        cwd=tmp_path,
        status=1,
    )
    trials = load_study(sweep).trials
    assert len(trials) == 4  # every trial ran, after the failed ones too
    states = {t.params["task.datamodule.n_points"]: set() for t in trials}
    for t in trials:
        states[t.params["task.datamodule.n_points"]].add(t.state)
    assert states == {5: {TrialState.FAIL}, 120: {TrialState.COMPLETE}}
    failed = sum(t.state == TrialState.FAIL for t in trials)
    assert last_line(result) == jobs_failed_line(failed, 4, sweep)
    rows = read_rows(sweep / "summary.csv")  # one row per trial's values
    assert sorted((row["task.datamodule.n_points"], row["failed"]) for row in rows) == sorted(
        (str(t.params["task.datamodule.n_points"]), str(int(t.state == TrialState.FAIL)))
        for t in trials
    )
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert best["best_value"] == pytest.approx(min(t.value for t in complete))
    assert best["trials"] == {"complete": len(complete), "pruned": 0, "fail": failed}
    assert best["best_params"]["task.datamodule.n_points"] == 120
    assert (sweep / "search.png").stat().st_size > 10_000  # drawn beside it, failures marked


@pytest.mark.e2e
def test_pruned_trials_stop_early_report_every_epoch_and_are_recorded_as_pruned(tmp_path):
    sweep, _ = run_sweep(  # pruned is not failed: exit status 0
        "hparams_search=lstm_sine",
        "hydra.sweeper.n_trials=2",
        # prunes every trial whose val/mse is above 0 once its warm-up epoch has passed
        "hydra.sweeper.pruner._target_=optuna.pruners.ThresholdPruner",
        "+hydra.sweeper.pruner.upper=0.0",
        "~hydra.sweeper.pruner.n_startup_trials",
        "hydra.sweeper.pruner.n_warmup_steps=1",
        "trainer.max_epochs=4",
        *QUICK,
        cwd=tmp_path,
    )
    trials = load_study(sweep).trials
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for trial in trials:
        (folder,) = sweep.glob(f"{trial.number}_*")
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["status"] == "ok" and metrics["epochs"] == 2  # of 4: stopped after epoch 1
        assert trial.user_attrs["pruned_at_epoch"] == 1
        per_epoch = {
            int(r["epoch"]): float(r["val/mse"])
            for r in read_rows(folder / "metrics.csv")
            if r["val/mse"] and int(r["epoch"]) < 2
        }
        assert trial.intermediate_values == pytest.approx(per_epoch)  # the task's monitor
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["trials"] == {"complete": 0, "pruned": 2, "fail": 0}
    assert (sweep / "search.png").is_file()  # pruned trials at the last value they reported
    summary = (sweep / "summary.md").read_text()
    assert "max_epochs=4" in summary and "optuna_pruning" not in summary  # what the user typed


# --- A killed search, resumed ---------------------------------------------------------------


@pytest.mark.e2e
def test_a_killed_search_is_completed_by_resume_sweep_without_rerunning_finished_trials(
    tmp_path,
):
    sweep = tmp_path / "search"
    args = ["hparams_search=lstm_sine", "hydra.sweeper.n_trials=3", "trainer.max_epochs=6"]
    search = subprocess.Popen(
        train_command(*args, *QUICK, "task.datamodule.n_points=600", f"hydra.sweep.dir={sweep}"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    while not list(sweep.glob("1_*/checkpoints/last.ckpt")):  # trial 1 is training
        assert search.poll() is None and time.monotonic() < deadline, "the search ended early"
        time.sleep(0.1)
    search.kill()
    search.wait()
    first = job_metrics(sweep)
    assert list(first) == [next(sweep.glob("0_*")).name]  # trial 0 finished, trial 1 did not
    killed = {t.number: t for t in load_study(sweep).trials}
    assert killed[1].state == TrialState.RUNNING

    assert_ok(run_train("-m", f"resume_sweep={sweep}", cwd=tmp_path))
    trials = load_study(sweep).trials
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(done) == 3 and trials[1].user_attrs["interrupted"]  # trial 1 was run again
    # trial 2 ran trial 1's values again in folder 1; trial 3 is new, in folder 3
    assert [(t.number, t.user_attrs["job"]) for t in done] == [(0, 0), (2, 1), (3, 3)]
    rerun = trials[2]
    assert rerun.params == killed[1].params  # in its own folder, from its last.ckpt
    metrics = job_metrics(sweep)
    assert len(metrics) == 3 and all(m["status"] == "ok" for m in metrics.values())
    (name,) = first
    assert metrics[name]["finished_at"] == first[name]["finished_at"]  # not trained again
    new = trials[3]
    assert new.params != killed[0].params  # the sampler went on, it did not start over
    assert sum(int(row["runs"]) for row in read_rows(sweep / "summary.csv")) == 3


@pytest.mark.e2e
def test_a_killed_search_completes_to_n_trials_wherever_its_folder_is_and_whatever_conf_holds(
    tmp_path,
):
    """The issue's cases: after the search space changed in conf/, `resume_sweep=` crashed
    with Optuna's ValueError after rewriting multirun.yaml and leaving a trial RUNNING; a moved
    search folder ran n_trials new trials and left the interrupted one unfinished. Now: a
    resume that can't be done rewrites nothing; one that can completes the interrupted trial,
    in its folder, to exactly n_trials finished trials, the space as the search began."""
    conf, sweep = tmp_path / "conf", tmp_path / "first" / "search"
    shutil.copytree(CONF, conf)
    search = subprocess.Popen(
        train_command(
            f"--config-path={conf}", "hparams_search=lstm_sine", "hydra.sweeper.n_trials=3",
            "trainer.max_epochs=6", *QUICK, "task.datamodule.n_points=600",
            f"hydra.sweep.dir={sweep}",
        ),
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    while not list(sweep.glob("1_*/checkpoints/last.ckpt")):  # trial 1 is training
        assert search.poll() is None and time.monotonic() < deadline, "the search ended early"
        time.sleep(0.1)
    search.kill()
    search.wait()
    space = conf / "hparams_search" / "lstm_sine.yaml"
    space.write_text(space.read_text().replace("choice(4, 8, 16, 32, 64)", "choice(4, 8)"))

    kept = sweep / ".hydra" / "conf"  # as a search of an older seqmodels, which kept none
    kept.rename(tmp_path / "kept")
    written = (sweep / "multirun.yaml").read_bytes()
    refused = run_train("-m", f"resume_sweep={sweep}", f"--config-path={conf}", cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "conf/ changed since this sweep started (hydra.sweeper.params" in last_line(refused)
    assert (sweep / "multirun.yaml").read_bytes() == written  # nothing rewritten
    assert [t.state for t in load_study(sweep).trials][1] == TrialState.RUNNING
    (tmp_path / "kept").rename(kept)

    moved = tmp_path / "second" / "search"
    moved.parent.mkdir()
    shutil.move(sweep, moved)
    assert_ok(run_train("-m", f"resume_sweep={moved}", cwd=tmp_path))
    trials = load_study(moved).trials
    finished = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(finished) == 3  # exactly n_trials, not n_trials more
    assert trials[1].state == TrialState.FAIL and trials[1].user_attrs["interrupted"]
    rerun = next(t for t in finished if t.user_attrs["job"] == 1)
    assert rerun.params == trials[1].params  # completed, in its own folder
    assert all(t.params["model.hidden_size"] in (4, 8, 16, 32, 64) for t in trials)
    metrics = job_metrics(moved)
    assert len(metrics) == 3 and all(m["status"] == "ok" for m in metrics.values())


# --- Several workers, one study on PostgreSQL ------------------------------------------------


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)), None
    )
    return Path(found).parent if found else None


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of its own in a temporary folder (as the `postgres` user when the
    tests run as root, since the server refuses root), stopped at the end."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed: apt-get install -y postgresql (.ci/run does)")
    pytest.importorskip("psycopg", reason="the test extra's psycopg[binary] is not installed")
    folder = Path(tempfile.mkdtemp(prefix="seqmodels-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = folder / "data"

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    pg(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "seqmodels", "--no-sync")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(folder / "log"),
        "-w",
        "start",
    )
    try:
        yield f"postgresql://seqmodels@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.e2e
def test_two_workers_on_one_postgresql_study_share_it_and_one_summary(tmp_path, postgres_url):
    sweep = tmp_path / "search"
    command = train_command(
        "hparams_search=lstm_sine",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage={postgres_url}",
        "hydra.sweeper.study_name=two_workers",
        "trainer.max_epochs=2",
        *QUICK,
        f"hydra.sweep.dir={sweep}",
    )
    workers = [
        subprocess.Popen(
            command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    trials = optuna.load_study(study_name="two_workers", storage=postgres_url).trials
    assert len(trials) == 4  # exactly the sum of the two workers' trials
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]  # no trial number reused
    assert all(t.state == TrialState.COMPLETE for t in trials)
    by_worker = [t.user_attrs["worker"] for t in trials]
    assert sorted(by_worker.count(w) for w in set(by_worker)) == [2, 2]
    jobs = sorted(int(p.parent.name.split("_")[0]) for p in sweep.glob("*/metrics.json"))
    assert jobs == [0, 1, 2, 3]  # one sweep folder, a job folder per trial number
    rows = read_rows(sweep / "summary.csv")  # the last worker to end summarized every trial
    assert sum(int(row["runs"]) for row in rows) == 4
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert results["trials"]["complete"] == 4
    assert results["best_value"] == pytest.approx(min(t.value for t in trials))


@pytest.mark.e2e
def test_a_worker_started_later_joins_the_shared_sweep_folder_of_its_study(tmp_path):
    sweep, storage = tmp_path / "search", f"sqlite:///{tmp_path / 'study.db'}"
    worker = ("hparams_search=lstm_sine", "hydra.sweeper.n_trials=1", "trainer=debug", *QUICK)
    shared = (f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={sweep}")
    for _ in range(2):  # one worker, then another into the same folder and study
        assert_ok(run_train(*worker, *shared, cwd=tmp_path))
    trials = optuna.load_study(study_name="lstm_sine", storage=storage).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert sorted(p.parent.name.split("_")[0] for p in sweep.glob("*/metrics.json")) == ["0", "1"]
    assert len(read_rows(sweep / "summary.csv")) == 2
    # without a shared storage, a folder that holds jobs is another search's: refused
    alone = run_train(*worker, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert alone.returncode == 1 and "already holds finished or started jobs" in alone.stderr


# --- Odd swept values, failed jobs, and the summary ------------------------------------------


@pytest.mark.e2e
def test_swept_paths_give_one_level_job_folders_a_summary_and_exit_status_1(tmp_path):
    data = write_parquet_dir(tmp_path / "imdb", 100, 50)
    sweep, result = run_sweep(
        "-m",
        "task=imdb",
        "model=rnn",
        f"task.datamodule.data_dir={data},/nonexistent",
        "task.max_epochs=1",
        "task.datamodule.max_len=20",
        *QUICK,
        cwd=tmp_path,
        status=1,
    )
    assert last_line(result) == jobs_failed_line(1, 2, sweep)
    folders = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name[0].isdigit())
    assert len(folders) == 2 and all((sweep / f / "metrics.json").is_file() for f in folders)
    assert folders[1].startswith("1_model=rnn,task.datamodule.data_dir=nonexistent-")
    assert folders[0].startswith("0_model=rnn,task.datamodule.data_dir=") and "imdb-" in folders[0]
    rows = read_rows(sweep / "summary.csv")
    assert sorted((row["runs"], row["failed"]) for row in rows) == [("0", "1"), ("1", "0")]


@pytest.mark.unit
def test_job_folder_names_are_one_level_safe_readable_and_distinct():
    assert folders.job_folder(3, "model=lstm,seed=1") == "3_model=lstm,seed=1"
    assert folders.job_folder(0, "") == "0_"
    odd = folders.job_folder(1, "task.datamodule.data_dir=/data/imdb v2,model=rnn")
    assert odd.startswith("1_task.datamodule.data_dir=data_imdb_v2-") and odd.endswith(",model=rnn")
    assert "/" not in odd and " " not in odd
    other = folders.job_folder(1, "task.datamodule.data_dir=/data/imdb_v2,model=rnn")
    assert other != odd  # values that read alike keep distinct folders
    long = folders.job_folder(12, ",".join(f"key{i}=" + "x" * 30 for i in range(20)))
    assert len(long) <= folders.MAX_NAME and long.startswith("12_key0=")


@pytest.mark.unit
def test_the_exit_status_says_jobs_failed_even_when_summarizing_fails(tmp_path):
    for num, status in ((0, "ok"), (1, "failed")):
        job = tmp_path / f"{num}_seed={num}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- seed={num}\n")
        (job / ".hydra" / "config.yaml").write_text("task: [unreadable\n")  # breaks the summary
        (job / "metrics.json").write_text(json.dumps({"status": status}))
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    with pytest.raises(SystemExit) as exit_info:
        SummaryCallback().on_multirun_end(config)
    message = str(exit_info.value.code)
    assert (
        message.startswith(f"error: summarizing {tmp_path} failed") and "1 jobs failed" in message
    )


# --- What may start a multirun ---------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(
    "overrides",
    [
        ("hparams_search=lstm_sine", "trainer=ddp", "hydra.sweeper.n_trials=2"),
        ("hydra.mode=MULTIRUN", "trainer=ddp", "model=rnn,lstm"),
        ("-m", "model=rnn,lstm", "trainer.strategy=ddp"),
        ("-m", "trainer=default,ddp"),
    ],
)
def test_ddp_in_any_multirun_is_refused_with_one_line_before_anything_starts(tmp_path, overrides):
    result = run_train(*overrides, cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("error: trainer=ddp in a multirun under hydra/launcher=basic")
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


@pytest.mark.unit
def test_slurm_launchers_may_run_ddp_jobs_and_single_ddp_runs_are_no_multirun():
    slurm = {"trainer": ["ddp"], "hydra/launcher": ["slurm"]}
    multirun.check_multirun(slurm, ["-m"], CONF)  # SLURM starts each job's processes itself
    multirun.check_multirun({"trainer": ["ddp"]}, [], CONF)  # one DDP run
    with pytest.raises(ConfigError, match="hydra/launcher=joblib"):
        multirun.check_multirun({"trainer": ["ddp"], "hydra/launcher": ["joblib"]}, ["-m"], CONF)
    assert multirun.is_multirun({"experiment": ["compare_sine"]}, [], CONF) is False
    assert multirun.is_multirun({"hparams_search": ["lstm_imdb"]}, [], CONF) is True


# --- The search space --------------------------------------------------------------------------


@pytest.mark.unit
def test_search_space_reads_hydra_sweep_syntax_as_optuna_distributions():
    params = yaml.safe_load((CONF / "hparams_search" / "lstm_sine.yaml").read_text())
    params = params["hydra"]["sweeper"]["params"]
    space, fixed = search_space(
        [*(f"{k}={v}" for k, v in params.items()), "seed=range(0,10,3)", "trainer.max_epochs=2"]
        + ["model.hidden_size=16"]  # typed: fixed, no longer searched
    )
    assert fixed == ["model.hidden_size=16", "trainer.max_epochs=2"]
    assert "model.hidden_size" not in space
    assert space["optimizer.lr"] == FloatDistribution(1e-3, 3e-2, log=True)
    assert space["task.datamodule.batch_size"] == CategoricalDistribution([16, 32, 64])
    assert space["seed"] == IntDistribution(0, 9, step=3)  # 0, 3, 6, 9: range's end excluded
    assert override_value("/data/imdb") == "/data/imdb"
    assert override_value("a b,c") == "'a b,c'" and override_value(None) == "null"


@pytest.mark.integration
@pytest.mark.parametrize(
    "overrides",
    [
        ["hparams_search=lstm_sine", "trainer.devices=2"],  # the case
        ["-m", "trainer.devices=[0,1]", "model=rnn,lstm"],
        ["-m", "++trainer.num_nodes=2", "seed=0,1"],
    ],
    ids=["search_devices", "sweep_device_list", "sweep_nodes"],
)
def test_a_job_that_would_start_processes_of_its_own_is_refused_in_a_multirun(tmp_path, overrides):
    """A search with trainer.devices=2 (no trainer=ddp): Lightning started a second process
    running a study of its own, and 2 requested trials became 4, all failed."""
    from .helpers import check_before_writing

    with pytest.raises(ConfigError) as err:
        check_before_writing([*overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert "in a multirun under hydra/launcher=basic would start each job's extra" in str(err.value)
    assert not (tmp_path / "sweep").exists()


# --- Storage, study and seeds: refused before anything is written, never drawn alike ----------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["hydra.sweeper.storage=notaurl://x"],
            "hydra.sweeper.storage=notaurl://x can't be opened",
        ),
        (
            ["hydra.sweeper.storage=sqlite:////nonexistent/dir/x.db"],
            "can't be opened (unable to open database file)",
        ),
        (["hydra.sweeper.direction=maximize"], "study lstm_sine in sqlite:///"),
        (
            ["hidden_size_params"],  # conf/hparams_search/lstm_sine.yaml edited since
            "the search space of study lstm_sine changed since its trials were drawn: "
            "model.hidden_size was CategoricalDistribution(choices=(4, 8, 16, 32, 64)), now",
        ),
        (["hydra.sweeper.direction=sideways"], "hydra.sweeper.direction=sideways: give minimize"),
    ],
    ids=["not_a_url", "no_such_folder", "other_direction", "other_space", "no_direction"],
)
def test_a_storage_or_study_the_search_cant_use_is_refused_in_one_line(
    tmp_path, overrides, message
):
    """The issue's cases: a storage that isn't a URL or can't be opened (40 and 126 lines of
    traceback, a sweep folder left behind), a direction other than the stored study's (a
    ConfigError printed as a traceback). Checked before Hydra writes anything."""
    from seqmodels.sweeps.search import check_study, open_study

    from .helpers import composed

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    stored = open_study(storage, "lstm_sine", "minimize")  # a study with one trial drawn
    space, _ = search_space(
        [f"{k}={v}" for k, v in composed(["hparams_search=lstm_sine"]).hydra.sweeper.params.items()]
    )
    from seqmodels.sweeps.search import suggest

    trial = stored.ask()
    for name, dist in space.items():
        suggest(trial, name, dist)
    typed = [f"hydra.sweeper.storage={storage}", *(o for o in overrides if "=" in o)]
    config = composed(["hparams_search=lstm_sine", *typed, f"hydra.sweep.dir={tmp_path / 's'}"])
    if "hidden_size_params" in overrides:
        config.hydra.sweeper.params["model.hidden_size"] = "choice(4, 8)"
    with pytest.raises(ConfigError) as err:
        check_study(config)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "s").exists()


@pytest.mark.e2e
def test_a_storage_that_is_no_url_stops_train_py_in_one_line_writing_nothing(tmp_path):
    result = run_train(
        "hparams_search=lstm_sine", "hydra.sweeper.storage=notaurl://x",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert last_line(result).startswith("error: hydra.sweeper.storage=notaurl://x can't be opened")
    assert not (tmp_path / "sweep").exists()


@pytest.mark.integration
def test_workers_on_one_study_never_draw_with_the_same_seed(tmp_path):
    """The issue's case: two workers on one PostgreSQL study drew the same values for every
    trial when their pids differed by the trials stored (seed + trials + pid). Each trial's
    sampler is seeded by its number, which the storage gives once: workers asking in turn
    draw what one worker would, trial by trial, and never one trial's values twice."""
    from seqmodels.sweeps.search import Search, open_study

    sampler = OmegaConf.create({"_target_": "optuna.samplers.TPESampler", "seed": 0})
    space, _ = search_space(["optimizer.lr=tag(log, interval(1e-4, 1e-1))", "x=choice(1,2,3)"])

    def draws(storage: str, workers: int) -> list[float]:
        searches = []
        for _ in range(workers):
            search = Search("minimize", 4, sampler=sampler, storage=storage)
            search.folder_id, search.sweep_dir = "s", tmp_path
            searches.append((search, open_study(storage, "shared", "minimize", sampler)))
        values = []
        for i in range(6):
            search, study = searches[i % workers]
            trial = search._ask(study, space)
            values.append(trial.params["optimizer.lr"])
            study.tell(trial, 1.0)
        return values

    two = draws(f"sqlite:///{tmp_path / 'two.db'}", workers=2)
    one = draws(f"sqlite:///{tmp_path / 'one.db'}", workers=1)
    assert two == one  # a trial's values depend on its number, not on who asked
    assert len(set(two)) == 6
