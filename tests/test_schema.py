"""The config schema: every shipped config passes it, and a wrong type or range names the key."""

from __future__ import annotations

import subprocess
import sys

import pytest

from seqmodels.errors import ConfigError

from .helpers import CONF, ROOT, check_before_writing, check_job, read_rows

CELLS = ("rnn", "lstm", "gru")
TASKS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
SHIPPED = (
    [[f"task={t}", f"model={m}"] for t in TASKS for m in CELLS]
    + [[f"experiment={p.stem}"] for p in sorted((CONF / "experiment").glob("*.yaml"))]
    + [[f"hparams_search={p.stem}"] for p in sorted((CONF / "hparams_search").glob("*.yaml"))]
    + [[f"trainer={p.stem}"] for p in sorted((CONF / "trainer").glob("*.yaml"))]
    + [["logger=tensorboard"], ["logger=mlflow"], ["callbacks=gradient_flow"]]
)


@pytest.mark.integration
@pytest.mark.parametrize("overrides", SHIPPED, ids=lambda o: " ".join(o))
def test_every_shipped_config_passes_the_checks(overrides):
    cfg = check_job(overrides)
    assert cfg.task.name in TASKS


@pytest.mark.integration
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.bidirectional=maybe", "model.bidirectional='maybe' must be true or false"),
        ("task.datamodule.noise=loud", "task.datamodule.noise='loud' must be a number"),
        ("model.hidden_size='12'", "model.hidden_size='12' must be a whole number"),
        ("optimizer._target_=torch.optim.Adamm", "optimizer._target_=torch.optim.Adamm is not"),
        ("task.ema_decay=1.5", "task.ema_decay=1.5 must be in (0, 1]"),
        ("task.early_stopping_patience=-1", "task.early_stopping_patience=-1 must be >= 0"),
        ("task.datamodule.test_size=0.0001", "test_size=0.0001 leaves no windows"),
    ],
)
def test_a_wrong_value_names_its_full_key_in_one_line(override, message):
    with pytest.raises(ConfigError) as err:
        check_before_writing([override])
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.integration
def test_a_sweep_checks_every_swept_value_before_any_job_runs(tmp_path):
    sweep = ["-m", "model.hidden_size=16,abc", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    with pytest.raises(ConfigError, match="model.hidden_size='abc' must be a whole number"):
        check_before_writing(sweep)
    assert not (tmp_path / "sweep").exists()
    # what only building tells fails that job alone, recorded (tests/test_sweeps.py)
    assert check_before_writing(["-m", "task.datamodule.n_points=100,5"]) == [
        "-m",
        "task.datamodule.n_points=100,5",
    ]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("override", "closest"),
    [
        ("+modle=rnn", "did you mean model?"),  # Hydra's own hint leads here: it would add it
        ("+trainer.max_epoch=5", "did you mean trainer.max_epochs?"),
        ("model.hiden_size=3", "did you mean model.hidden_size?"),
        ("+task.datamodule.n_point=50", "did you mean task.datamodule.n_points?"),
        ("+optimizer.beta=1", "did you mean optimizer.betas?"),
    ],
)
def test_a_key_that_is_no_setting_is_refused_naming_the_closest(override, closest):
    with pytest.raises(ConfigError) as err:
        check_before_writing([override, "trainer=debug"])
    key = override.split("=")[0].lstrip("+")
    assert str(err.value).startswith(key) or str(err.value).startswith(f"{override}: ")
    assert str(err.value).endswith(closest) and "\n" not in str(err.value)


@pytest.mark.integration
@pytest.mark.parametrize(
    "overrides",
    [
        ["++trainer.limit_train_batches=2"],  # any Lightning Trainer argument
        ["+optimizer.betas=[0.9,0.99]"],  # any argument of the named optimizer
        ["callbacks=gradient_flow", "callbacks.gradient_flow.every_n_epochs=2"],
    ],
)
def test_arguments_of_what_a_section_builds_are_settings(overrides):
    assert check_before_writing([*overrides, "trainer=debug"]) == [*overrides, "trainer=debug"]


@pytest.mark.e2e
@pytest.mark.parametrize("args", [["--help"], ["--cfg", "job"], ["model=lstmm"], ["+modle=rnn"]])
def test_help_and_refusals_come_before_torch_is_imported(args):
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['train.py', *{args!r}]\n"
        "try:\n"
        "    runpy.run_path('train.py', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch imported' if 'torch' in sys.modules else 'no torch')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "no torch", result.stderr[-1000:]


@pytest.mark.e2e
def test_the_sweep_summaries_import_neither_torch_nor_lightning():
    """A sweep's summary callback runs in the submitting process (a login node under SLURM)."""
    code = (
        "import sys\n"
        "import seqmodels.sweeps.summarize\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "[]", result.stderr[-1000:]


# --- Settings that would fail once training started, refused before anything is written ------


@pytest.mark.integration
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["trainer.precision=banana"], "trainer.precision='banana' is no precision Lightning"),
        (
            ["+optimizer.betas=[0.9]"],
            "optimizer: list index out of range (lr=0.003, weight_decay=0.05, betas=[0.9])",
        ),
        (
            ["optimizer=sgd", "optimizer.momentum=-1"],
            "optimizer: Invalid momentum value: -1 (lr=0.01, momentum=-1)",
        ),
        (
            ["scheduler=step", "~scheduler.step_size"],
            "scheduler: StepLR.__init__() missing 1 required positional argument: 'step_size'",
        ),
        (
            ["scheduler=step", "scheduler.step_size=0"],
            "scheduler: integer modulo by zero (step_size=0, gamma=0.5)",
        ),
        (  # trained uphill, silently
            ["scheduler=step", "scheduler.gamma=-1"],
            "scheduler: its learning rate would be -0.003 at epoch 10 (step_size=10, gamma=-1)",
        ),
        (["scheduler=plateau", "scheduler.factor=2"], "Factor should be < 1.0"),
        (  # the spelling, from before optimizer and scheduler were groups
            ["task.module.scheduler={name: StepLR}"],
            "task.module.scheduler is given by the run (scheduler=<name> and scheduler.<argu",
        ),
        (
            ["+task.module.optimizer.betas=[0.9]"],
            "task.module.optimizer is given by the run (optimizer=<name> and optimizer.<argu",
        ),
        (
            ["task.monitor=val/acc"],
            "task.monitor=val/acc is not logged by Forecaster; choose one of val/loss, val/mse",
        ),
        (
            ["scheduler=plateau", "scheduler.monitor=val/los"],
            "scheduler.monitor=val/los is not logged by Forecaster",
        ),
        (["++trainer.limit_val_batches=0"], "trainer.limit_val_batches=0 switches validation off"),
        (
            ["++trainer.check_val_every_n_epoch=9", "trainer.max_epochs=5"],
            "trainer.check_val_every_n_epoch=9 > trainer.max_epochs=5: no epoch would validate",
        ),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_setting_that_would_fail_after_training_started_is_refused_first(overrides, message):
    with pytest.raises(ConfigError) as err:
        check_before_writing(overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.integration
def test_a_plateau_schedule_works_with_validation_every_second_epoch(compose_cfg, tmp_path):
    """The issue's case crashed after epoch 0 (no val/loss to step on): the plateau scheduler
    now steps after the epochs that validate."""
    from seqmodels.training.pipeline import train

    cfg = compose_cfg(
        "scheduler=plateau", "scheduler.patience=0", "++trainer.check_val_every_n_epoch=2",
        "trainer.max_epochs=4", "callbacks=lr_monitor", "threads=1",
        "trainer.enable_progress_bar=false", "task.datamodule.n_points=60",
    )  # fmt: skip
    metrics = train(cfg, tmp_path / "run")
    assert metrics["status"] == "ok" and metrics["epochs"] == 4
    rates = [
        float(row["lr-AdamW"])
        for row in read_rows(tmp_path / "run" / "metrics.csv")
        if row.get("lr-AdamW")
    ]
    assert rates[:3] == [cfg.optimizer.lr] * 3  # no step before the first validation
