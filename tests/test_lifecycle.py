"""A run's life: killed at any point and resumed, it ends as the run never stopped; its folder
keeps its own config, is held by one process, and is cleaned of what a killed run left."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from seqmodels import files
from seqmodels.errors import ConfigError
from seqmodels.training import callbacks as resume
from seqmodels.training.folder import FolderInUse, RunFolder
from seqmodels.training.pipeline import train

from .helpers import (
    CONF,
    ROOT,
    assert_refused,
    check_job,
    last_line,
    logged_rows,
    refusal,
    results,
    run_sweep,
    run_train,
)

# A tiny deterministic sine run that stops early (patience 2) after a dozen epochs or so.
TINY = (
    "threads=1",
    "trainer.deterministic=true",
    "trainer.enable_progress_bar=false",
    "task.datamodule.n_points=300",
    "model.hidden_size=8",
    "model.num_layers=2",
    "model.dropout=0.2",  # dropout draws random numbers: the resumed run must draw the same
    "task.max_epochs=40",
    "task.early_stopping_patience=2",
    "task.min_steps_before_best=0",  # best checkpoints from epoch 0: kills count them
)


class Killed(BaseException):
    """A stand-in for kill -9: the run's own code does nothing more after it."""


class KillAt(Callback):
    """Raises Killed in one Lightning hook, the first time `when(trainer, *args)` holds."""

    def __init__(self, hook: str, when=lambda trainer, *args: True) -> None:
        self.fired = False

        def hook_fn(trainer, module, *args) -> None:
            if not self.fired and when(trainer, *args):
                self.fired = True
                raise Killed(hook)

        setattr(self, hook, hook_fn)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, dict]:
    """The never-stopped run."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=list(TINY))
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    metrics = train(cfg, run_dir)
    assert 3 < metrics["epochs"] < 40  # it stopped early
    return run_dir, metrics


def _killed_checkpoint_write(monkeypatch, which: str) -> None:
    """Makes the matching torch.save in a checkpoint write die halfway (or before writing)."""
    real_save = torch.save
    seen: list[str] = []

    def save(obj, path, *args, **kwargs):
        name = Path(path).name  # the temporary .last.ckpt.xxxx.tmp
        kind = "best" if name.startswith(".best") else "last"
        seen.append(kind)
        if which == "best" and seen.count("best") == 3:
            real_save(obj, path, *args, **kwargs)
            Path(path).write_bytes(Path(path).read_bytes()[:1000])  # half-written
            raise Killed("while writing a best checkpoint")
        if which == "last_after_best" and len(seen) > 4 and seen[-2:] == ["best", "last"]:
            raise Killed("after a new best, before last.ckpt")  # the old best is deleted
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(resume.torch, "save", save)  # what AtomicCheckpointIO calls


KILL_POINTS = {
    "first_epoch": lambda: KillAt(  # before any checkpoint: it starts over in its folder
        "on_train_batch_end", lambda t, *a: t.current_epoch == 0 and a[-1] == 2
    ),
    "mid_epoch": lambda: KillAt(
        "on_train_batch_end", lambda t, *a: t.current_epoch == 2 and a[-1] == 2
    ),
    "fit_validation": lambda: KillAt(
        "on_validation_batch_start", lambda t, *a: t.state.fn == "fit" and t.current_epoch == 3
    ),
    "final_validation": lambda: KillAt("on_validation_start", lambda t, *a: t.state.fn != "fit"),
    "final_test": lambda: KillAt("on_test_batch_start"),
    "writing_best_checkpoint": "best",
    "between_best_and_last": "last_after_best",
}


@pytest.mark.integration
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_run_killed_at_any_point_resumes_to_the_never_stopped_result(
    reference, compose_cfg, tmp_path, monkeypatch, point
):
    ref_dir, ref_metrics = reference
    run_dir = tmp_path / "run"
    kill = KILL_POINTS[point]
    with monkeypatch.context() as patch:
        callbacks = []
        if isinstance(kill, str):
            _killed_checkpoint_write(patch, kill)
        else:
            callbacks = [kill()]
        with pytest.raises(Killed):
            train(compose_cfg(*TINY), run_dir, callbacks=callbacks)
    assert not (run_dir / "metrics.json").exists()

    resumed = train(compose_cfg(*TINY, f"resume={run_dir}"), run_dir)
    assert results(resumed) == results(ref_metrics)  # metrics, epochs, the best epoch
    best = torch.load(resumed["best_checkpoint"], weights_only=True)["state_dict"]
    ref_best = torch.load(ref_metrics["best_checkpoint"], weights_only=True)["state_dict"]
    assert all(torch.equal(best[k], ref_best[k]) for k in ref_best)
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == sorted(p.name for p in (ref_dir / "checkpoints").iterdir())  # no .tmp
    assert logged_rows(run_dir) == logged_rows(ref_dir)  # every row once, as never stopped


@pytest.mark.integration
def test_an_early_stopped_run_killed_in_its_final_test_trains_no_further(
    reference, compose_cfg, tmp_path
):
    """The issue's case: stopped early, killed during the final test, resumed."""
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        train(compose_cfg(*TINY), run_dir, callbacks=[KILL_POINTS["final_test"]()])
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    resumed = train(compose_cfg(*TINY, f"resume={run_dir}", "task.max_epochs=60"), run_dir)
    assert resumed["epochs"] == reference[1]["epochs"]  # not one more epoch, even if allowed
    again = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert again["global_step"] == last["global_step"]


@pytest.mark.integration
def test_a_run_copied_to_another_machine_resumes_there_to_the_same_result(
    reference, compose_cfg, tmp_path
):
    first = tmp_path / "machine1" / "run"
    with pytest.raises(Killed):  # after its best epoch: the resumed run must find that one
        train(compose_cfg(*TINY), first, callbacks=[KILL_POINTS["final_test"]()])
    moved = tmp_path / "machine2" / "run"
    shutil.copytree(first, moved)
    shutil.rmtree(first)
    resumed = train(compose_cfg(*TINY, f"resume={moved}"), moved)
    assert results(resumed) == results(reference[1])
    assert Path(resumed["best_checkpoint"]).parent == moved / "checkpoints"


# --- A new run from a checkpoint's weights (ckpt_path=) --------------------------------------


class AtTrainStart(Callback):
    """Records the optimizer's learning rate and the weights when training starts."""

    def on_train_start(self, trainer, module) -> None:
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]
        self.weights = {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.integration
def test_a_new_run_from_a_checkpoint_takes_its_weights_and_nothing_else(
    reference, compose_cfg, tmp_path
):
    """The issue's case: from an early-stopped run's last.ckpt copied elsewhere, a "new run"
    trained 0 epochs, reported the source's metrics with a best_checkpoint in the other run's
    folder, ran with the checkpoint's learning rate (recording the typed one) and the source's
    early stopping. Now it trains with what is typed, in its own folder, from the weights."""
    source_dir, source = reference
    copy = tmp_path / "elsewhere" / "last.ckpt"
    copy.parent.mkdir()
    shutil.copy(source_dir / "checkpoints" / "last.ckpt", copy)
    typed = (*TINY, f"ckpt_path={copy}", "optimizer.lr=0.0005", "model.dropout=0.0")
    typed += ("task.max_epochs=4", "task.early_stopping_patience=100")
    rate = AtTrainStart()
    run_dir = tmp_path / "new"
    metrics = train(compose_cfg(*typed), run_dir, callbacks=[rate])
    assert metrics["status"] == "ok" and metrics["epochs"] == 4  # its own epochs, not 0
    assert rate.lr == 0.0005  # the typed rate, not the checkpoint's optimizer state
    assert Path(metrics["best_checkpoint"]).parent == run_dir / "checkpoints"
    assert metrics["started_from"] == str(copy.resolve())
    hparams = torch.load(metrics["best_checkpoint"], weights_only=True)["hyper_parameters"]
    assert hparams["optimizer"]["lr"] == 0.0005 and hparams["net"]["dropout"] == 0.0
    source_weights = torch.load(copy, weights_only=True)["state_dict"]
    assert all(torch.equal(rate.weights[k], source_weights[k]) for k in source_weights)


@pytest.mark.integration
def test_a_new_run_from_a_checkpoint_needs_no_trace_of_the_source_run(
    reference, compose_cfg, tmp_path
):
    copy = tmp_path / "copy.ckpt"
    shutil.copy(reference[0] / "checkpoints" / "last.ckpt", copy)  # its run folder is gone
    saved = torch.load(copy, weights_only=True)
    for callback in saved["callbacks"].values():  # its best record points into a gone folder
        if isinstance(callback, dict) and "best_model_path" in callback:
            callback["best_model_path"] = str(tmp_path / "gone" / "best-003.ckpt")
    torch.save(saved, copy)
    metrics = train(compose_cfg(*TINY, f"ckpt_path={copy}", "task.max_epochs=2"), tmp_path / "r")
    assert metrics["status"] == "ok" and metrics["epochs"] == 2


@pytest.mark.integration
def test_a_checkpoint_whose_weights_dont_fit_is_refused_naming_the_setting(reference, tmp_path):
    """The docs' own example (`ckpt_path=... model.hidden_size=16` against another size) was
    refused as a resume; now it is refused, in one line, for the reason it can't work."""
    copy = tmp_path / "last.ckpt"
    shutil.copy(reference[0] / "checkpoints" / "last.ckpt", copy)
    message = refusal(*TINY, f"ckpt_path={copy}", "model.hidden_size=16", run_dir=tmp_path / "run")
    assert message.startswith(
        f"ckpt_path={copy} holds weights of another network than this run's "
        "(model.hidden_size=8 (this run: 16)): a new run from a checkpoint takes its weights"
    )
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.integration
def test_resume_may_name_a_checkpoint_of_its_run_to_continue_from(reference, compose_cfg, tmp_path):
    """`resume=RUN/checkpoints/X.ckpt` continues RUN in its folder from X (interrupted.ckpt
    keeps the steps of an unfinished epoch); a checkpoint elsewhere is ckpt_path='s."""
    from seqmodels.training.folder import resume_checkpoint, run_folder_of

    run_dir = tmp_path / "run"
    with pytest.raises(Killed):
        train(compose_cfg(*TINY), run_dir, callbacks=[KILL_POINTS["mid_epoch"]()])
    last = run_dir / "checkpoints" / "last.ckpt"
    assert run_folder_of(str(last)) == run_dir and resume_checkpoint(str(last)) == last
    assert run_folder_of(str(run_dir)) == run_dir and resume_checkpoint(str(run_dir)) is None
    resumed = train(compose_cfg(*TINY, f"resume={last}"), run_dir)
    assert results(resumed) == results(reference[1])


@pytest.mark.integration
def test_resume_and_its_refusals_name_resume(reference, compose_cfg, tmp_path):
    """A refusal of `resume=` named `ckpt_path=` (the issue); and resume= with ckpt_path= is
    one or the other."""
    run_dir = tmp_path / "run"
    shutil.copytree(reference[0], run_dir)
    (run_dir / "metrics.json").unlink()
    last = run_dir / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    saved["hyper_parameters"]["net"]["hidden_size"] = 3  # trained with other settings
    torch.save(saved, last)
    with pytest.raises(ConfigError) as err:
        train(compose_cfg(*TINY, f"resume={run_dir}"), run_dir)
    assert str(err.value).startswith(f"resume={last} was trained with other settings")
    with pytest.raises(ConfigError, match="give one of them"):
        check_job([*TINY, f"resume={run_dir}", f"ckpt_path={last}"])


# --- The run's own config ---------------------------------------------------------------


@pytest.mark.integration
def test_resume_keeps_the_saved_config_even_when_conf_changed(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.joinpath(".hydra").mkdir(parents=True)
    saved = check_job(["model.hidden_size=8", "task.datamodule.n_points=300"])
    (run_dir / ".hydra" / "config.yaml").write_text(
        __import__("omegaconf").OmegaConf.to_yaml(saved)
    )
    hydra_yaml = {"hydra": {"runtime": {"choices": {"task": "sine", "model": "lstm"}}}}
    (run_dir / ".hydra" / "hydra.yaml").write_text(json.dumps(hydra_yaml))
    (run_dir / ".hydra" / "overrides.yaml").write_text('["model.hidden_size=8"]')
    conf = tmp_path / "conf"
    shutil.copytree(CONF, conf)
    sine = conf / "task" / "sine.yaml"
    sine.write_text(sine.read_text().replace("n_points: 100", "n_points: 5000"))

    cfg = check_job([f"resume={run_dir}", "trainer.max_epochs=7", "threads=1"], conf)
    assert cfg.task.datamodule.n_points == 300 and cfg.model.hidden_size == 8  # its own
    assert cfg.trainer.max_epochs == 7 and cfg.threads == 1  # allowed at resume
    with pytest.raises(ConfigError) as err:
        check_job([f"resume={run_dir}", "optimizer.lr=0.1"], conf)
    message = str(err.value)
    assert "optimizer.lr=0.1 would change them" in message and "\n" not in message
    assert "start a new run: python train.py model.hidden_size=8 optimizer" in message
    with pytest.raises(ConfigError, match="model=gru would change them"):
        check_job([f"resume={run_dir}", "model=gru"], conf)
    check_job([f"resume={run_dir}", "model=lstm", "model.hidden_size=8"], conf)  # no change


# --- One process per folder; what a killed run left --------------------------------------


HOLD = """
import sys, time
from seqmodels.training.folder import RunFolder
RunFolder(sys.argv[1]).lock()
print("held", flush=True)
time.sleep(60)
"""


@pytest.mark.e2e
def test_a_second_process_into_a_held_folder_stops_naming_the_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUse) as err:
            RunFolder(tmp_path).lock()
        assert f"in use by process {holder.pid} on " in str(err.value)
    finally:
        holder.kill()  # kill -9: the lock of a dead process must not block
        holder.wait()
    RunFolder(tmp_path).lock()
    assert f"process {os.getpid()} " in (tmp_path / ".lock").read_text()


@pytest.mark.unit
def test_partial_writes_of_a_killed_run_are_removed_at_its_next_start(tmp_path):
    folder = RunFolder(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    left = [tmp_path / "checkpoints" / ".last.ckpt.ab12cd34.tmp", tmp_path / ".metrics.json.1.tmp"]
    for path in left:
        path.write_bytes(b"half")
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"whole")
    assert sorted(folder.remove_partial_writes()) == sorted(left)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["last.ckpt"]


@pytest.mark.unit
def test_a_best_checkpoint_the_resumed_state_doesnt_know_is_removed(tmp_path):
    """Killed after saving a new best but before last.ckpt: on a replay that doesn't reach the
    same best (a GPU's last bits), that file would stay and be taken for the best."""
    folder = RunFolder(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    for name in ("best-003.ckpt", "best-004.ckpt", "last.ckpt", "interrupted.ckpt"):
        (tmp_path / "checkpoints" / name).write_bytes(b"x")
    assert [p.name for p in folder.remove_checkpoints_except({"best-003.ckpt"})] == [
        "best-004.ckpt"
    ]
    left = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert left == ["best-003.ckpt", "interrupted.ckpt", "last.ckpt"]


@pytest.mark.unit
def test_results_are_written_with_the_users_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        files.write_json(tmp_path / "metrics.json", {"a": 1})
        with files.atomic_path(tmp_path / "plot.png") as tmp:
            tmp.write_bytes(b"png")
        resume.AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(1)}, tmp_path / "x.ckpt")
    finally:
        os.umask(old)
    for name in ("metrics.json", "plot.png", "x.ckpt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


@pytest.mark.unit
def test_every_json_file_is_strict_json(tmp_path):
    files.write_json(tmp_path / "m.json", {"loss": float("nan"), "x": [float("inf"), 1.5]})
    text = (tmp_path / "m.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(c)) == {
        "loss": None,
        "x": [None, 1.5],
    }


# --- A diverged run ------------------------------------------------------------------------


@pytest.mark.integration
def test_a_diverged_run_stops_at_once_and_says_so(compose_cfg, tmp_path):
    from seqmodels.training.callbacks import Diverged

    cfg = compose_cfg(*TINY, "optimizer.lr=1e30", "task.gradient_clip_val=null")
    with pytest.raises(Diverged) as err:
        train(cfg, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())  # strict JSON
    assert metrics["status"] == "diverged" and metrics["epoch"] == 0
    assert metrics["step"] == err.value.step and 1 <= metrics["step"] <= 5  # within epoch 0
    assert "the training loss is nan" in metrics["error"] or "inf" in metrics["error"]


@pytest.mark.unit
@pytest.mark.parametrize(("steps_before", "first"), [(0, True), (3, False)])
def test_a_loss_not_finite_before_any_update_is_not_blamed_on_the_learning_rate(
    steps_before, first
):
    """A loss that is inf at the very first step comes from the data or the model's settings:
    the line says so instead of "lower optimizer.lr" (the issue's 1e39 in a series)."""
    from types import SimpleNamespace

    from seqmodels.training.callbacks import Diverged, StopOnDivergence

    trainer = SimpleNamespace(global_step=steps_before, current_epoch=0, log_every_n_steps=10)
    stop = StopOnDivergence()
    stop.on_train_batch_start(trainer, None, None, 0)
    trainer.global_step += 1  # the batch's optimizer step
    with pytest.raises(Diverged) as err:
        stop.on_train_batch_end(trainer, None, torch.tensor(float("inf")), None, 0)
    assert err.value.before_any_update is first
    advice = err.value.advice(0.001)
    if first:
        assert str(err.value).endswith("step 1 before any update")
        assert "the learning rate is not the cause: check the data" in advice
    else:
        assert advice == "lower optimizer.lr (now 0.001) or set task.gradient_clip_val"


@pytest.mark.e2e
def test_a_diverged_run_exits_1_with_one_line(tmp_path):
    """The issue's command: clipping keeps the training loss finite for a step, while the
    validation MSE already overflows (this run used to end "ok" by early stopping)."""
    run_dir = tmp_path / "run"
    result = run_train("optimizer.lr=1e30", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert_refused(result, "error: the val/mse is inf at epoch 0, step 1")
    assert "diverged" in last_line(result)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "diverged" and (metrics["epoch"], metrics["step"]) == (0, 1)


@pytest.mark.e2e
def test_a_sweep_counts_diverged_jobs_as_failed_and_exits_1(tmp_path):
    sweep, result = run_sweep(
        "-m", *TINY, "task.gradient_clip_val=null", "optimizer.lr=0.003,1e30",
        cwd=tmp_path, status=1,
    )  # fmt: skip
    assert "error: 1 of 2 jobs failed" in result.stderr
    statuses = sorted(json.loads(p.read_text())["status"] for p in sweep.glob("*/metrics.json"))
    assert statuses == ["diverged", "ok"]
    assert "(diverged)" in (sweep / "summary.md").read_text()


@pytest.mark.e2e
def test_a_run_that_slurm_restarts_continues_in_its_folder(tmp_path, monkeypatch):
    """SLURM runs a requeued job's command again (SLURM_RESTART_COUNT=1): into a folder that
    holds the run's config and last.ckpt, it continues there instead of refusing the folder.
    (tests/test_slurm.py does this on a real cluster.)"""
    run_dir = tmp_path / "run"
    longer = {"task.datamodule.n_points": 3000, "task.max_epochs": 20}  # a few seconds
    longer["task.early_stopping_patience"] = 1000
    command = [o for o in TINY if o.split("=")[0] not in longer]
    command += [f"{key}={value}" for key, value in longer.items()] + [f"hydra.run.dir={run_dir}"]
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *command],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    for _ in range(1200):
        if last.is_file() or first.poll() is not None:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)  # what SLURM sends a job it requeues
    assert first.wait(timeout=120) == 128 + signal.SIGTERM
    assert not (run_dir / "metrics.json").exists()

    refused = run_train(*command, cwd=tmp_path)  # by hand, the folder is refused
    assert refused.returncode == 1 and "already holds a run" in refused.stderr

    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    restarted = run_train(*command, cwd=tmp_path)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    assert "SLURM restarted this job (restart 1): it continues in its folder" in log
    assert f"Restored all states from the checkpoint at {last}" in log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["epochs"] == 20
    epochs = [int(row["epoch"]) for row in logged_rows(run_dir) if "train/loss" in row]
    assert epochs == list(range(20))  # each epoch once
