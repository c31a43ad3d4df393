"""Every config file composes, and what it names can be built."""

import ast
from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from seqmodels.cli.command_line import check_one_place
from seqmodels.errors import ConfigError
from seqmodels.training.pipeline import make_trainer

from .helpers import CONF

TASKS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
TRAINERS = sorted(p.stem for p in (CONF / "trainer").glob("*.yaml"))
LOGGERS = sorted(p.stem for p in (CONF / "logger").glob("*.yaml"))


@pytest.mark.unit
def test_the_config_groups_hold_what_the_readme_promises():
    assert {"sine", "imdb", "memory", "series"} <= set(TASKS)
    assert {"rnn", "lstm", "gru"} <= set(MODELS)
    assert {"default", "cpu", "gpu", "debug"} <= set(TRAINERS)
    assert {"csv", "tensorboard", "mlflow"} <= set(LOGGERS)


@pytest.mark.integration
def test_defaults_are_lstm_on_sine_with_csv_logs(compose_cfg):
    cfg = compose_cfg()
    assert cfg.task.name == "sine" and cfg.model.cell == "lstm"
    assert cfg.trainer.accelerator == "auto" and list(cfg.logger) == ["csv"]


@pytest.mark.integration
@pytest.mark.parametrize("trainer", TRAINERS)
def test_every_trainer_config_builds_a_trainer(compose_cfg, trainer, tmp_path):
    cfg = compose_cfg(f"trainer={trainer}")
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    if trainer == "gpu":  # can't build without a GPU; check what it asks for
        assert kwargs["accelerator"] == "gpu"
        return
    built = make_trainer(cfg, [], logger=False, default_root_dir=tmp_path)
    assert built.max_epochs == (1 if trainer == "debug" else cfg.task.max_epochs)
    if built.progress_bar_callback is not None:  # redrawn every few batches, not every batch
        assert built.progress_bar_callback.refresh_rate == kwargs["progress_bar_refresh_rate"] > 1


@pytest.mark.integration
# logger=mlflow: importing MLflow starts a process (`uname -p`); tests/test_mlflow.py (e2e)
@pytest.mark.parametrize("logger", [name for name in LOGGERS if name != "mlflow"])
def test_every_logger_config_builds_loggers_in_the_run_folder(compose_cfg, logger, tmp_path: Path):
    cfg = compose_cfg(f"logger={logger}")
    built = [instantiate(c, save_dir=str(tmp_path)) for c in cfg.logger.values()]
    assert built and all(Path(b.save_dir) == tmp_path for b in built)


@pytest.mark.unit
def test_tuned_files_name_an_existing_task_and_model():
    for path in (CONF / "tuned").glob("*.yaml"):
        task, model = path.stem.split("_")
        assert task in TASKS and model in MODELS, path.name
    optimizers = {p.stem for p in (CONF / "optimizer").glob("*.yaml")}
    for path in (CONF / "tuned" / "optimizer").glob("*.yaml"):
        task, optimizer = path.stem.split("_")
        assert task in TASKS and optimizer in optimizers, path.name
    for path in (CONF / "experiment" / "per_model").glob("*.yaml"):
        experiment, model = path.stem.rsplit("_", 1)
        assert (CONF / "experiment" / f"{experiment}.yaml").is_file() and model in MODELS


@pytest.mark.integration
def test_tuned_settings_apply_to_their_pair_only(compose_cfg):
    assert compose_cfg("model=rnn").model.hidden_size == 4  # conf/tuned/sine_rnn.yaml
    assert compose_cfg("model=lstm").model.hidden_size == 16  # conf/tuned/sine_lstm.yaml


EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


HPARAMS_SEARCHES = sorted(p.stem for p in (CONF / "hparams_search").glob("*.yaml"))


@pytest.mark.integration
@pytest.mark.parametrize(
    "override",
    [f"experiment={name}" for name in EXPERIMENTS]
    + [f"hparams_search={name}" for name in HPARAMS_SEARCHES],
)
def test_every_experiment_and_search_composes_and_runs_with_the_debug_trainer(
    compose_cfg, override, tiny_imdb, tmp_path
):
    from seqmodels.training.pipeline import train

    cfg = compose_cfg(override, "trainer=debug")
    if cfg.task.name == "imdb":  # the tiny parquet copy instead of the real data
        cfg = compose_cfg(override, "trainer=debug", f"task.datamodule.data_dir={tiny_imdb}")
    metrics = train(cfg, tmp_path / "run")
    assert metrics["status"] == "ok" and (tmp_path / "run" / "metrics.json").is_file()


@pytest.mark.integration
def test_comparisons_sweep_every_cell_over_several_seeds(compose_cfg):
    cells, baselines = {"rnn", "lstm", "gru"}, {"transformer", "cnn"}
    for name in ("compare_sine", "compare_imdb", "compare_series", "memory_length"):
        params = compose_cfg(f"experiment={name}", return_hydra_config=True)
        sweep = params.hydra.sweeper.params
        assert cells <= set(sweep.model.split(",")), name
        assert len(sweep.seed.split(",")) >= 3, name
    for name in ("compare_imdb", "memory_length"):  # where the recurrent cells stand
        params = compose_cfg(f"experiment={name}", return_hydra_config=True)
        assert baselines <= set(params.hydra.sweeper.params.model.split(",")), name


@pytest.mark.integration
@pytest.mark.parametrize("name", HPARAMS_SEARCHES)
def test_searches_optimize_the_task_metric_in_its_direction(compose_cfg, name):
    cfg = compose_cfg(f"hparams_search={name}", return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert "optuna" in sweeper._target_.lower() and sweeper.n_trials >= 10
    assert sweeper.direction == {"min": "minimize", "max": "maximize"}[cfg.task.mode]
    assert cfg.hydra.mode.name == "MULTIRUN"  # runs as a sweep without -m


@pytest.mark.integration
def test_slurm_launcher_takes_the_overrides_the_readme_names(compose_cfg):
    cfg = compose_cfg(
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.gpus_per_node=2",
        "hydra.launcher.timeout_min=240",
        return_hydra_config=True,
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 2, 240)


@pytest.mark.integration
def test_gpu_per_job_launcher_is_joblib_with_a_job_per_gpu_slot(compose_cfg):
    from hydra.utils import instantiate

    cfg = compose_cfg("hydra/launcher=gpu_per_job", return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (launcher.n_jobs, launcher.jobs_per_gpu) == (None, 1)  # one job per GPU by default
    built = instantiate(launcher)
    # (Hydra's plugin scan loads plugin modules anew: classes compared by name)
    assert "JoblibLauncher" in [c.__name__ for c in type(built).__mro__]
    assert built.jobs_per_gpu == 1
    assert "jobs_per_gpu" not in built.joblib  # joblib.Parallel gets its own arguments only


# --- One knob per setting -------------------------------------------------------------------


@pytest.mark.unit
def test_the_cell_is_chosen_by_model_only():
    with pytest.raises(ConfigError) as err:
        check_one_place(["task", "model.cell"])
    assert str(err.value).startswith(
        "model.cell can't be overridden: the cell is chosen with model="
    )
    check_one_place(["model", "model.hidden_size", "task.max_epochs", "trainer.max_epochs"])


@pytest.mark.integration
@pytest.mark.parametrize("epochs", ["trainer.max_epochs=20", "task.max_epochs=20"])
def test_the_lr_schedule_follows_the_epochs_however_they_are_set(compose_cfg, epochs):
    cfg = compose_cfg("experiment=sine_long", epochs)
    assert cfg.trainer.max_epochs == cfg.scheduler.T_max == 20
    assert compose_cfg("experiment=sine_long").scheduler.T_max == 80


@pytest.mark.integration
@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
def test_sine_long_reads_out_the_max_over_steps_for_every_cell(compose_cfg, model):
    cfg = compose_cfg("experiment=sine_long", f"model={model}")
    assert cfg.model.readout == "max" and cfg.model.hidden_size == 64  # docs/results.md
    assert compose_cfg(f"model={model}").model.readout == "last"  # the tutorial keeps `last`
    assert not compose_cfg("experiment=sine_long").task.datamodule.fresh_noise  # an option only


@pytest.mark.unit
def test_no_model_module_imports_a_data_module():
    for path in (CONF.parent / "seqmodels" / "models").glob("*.py"):
        imported = [
            node.module
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module
        ]
        imported += [
            alias.name
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Import)
            for alias in node.names
        ]
        assert not [m for m in imported if m.startswith("seqmodels.data")], path.name


@pytest.mark.integration
def test_imdb_defaults_pool_over_time_and_imdb_length_reads_the_last_state(compose_cfg):
    gru = compose_cfg("task=imdb", "model=gru").model  # conf/tuned/imdb_gru.yaml
    assert gru.bidirectional and gru.readout == "max"
    lstm = compose_cfg("task=imdb", "model=lstm").model  # conf/tuned/imdb_lstm.yaml
    assert lstm.bidirectional and lstm.readout == "max" and lstm.word_dropout == 0.3
    rnn = compose_cfg("task=imdb", "model=rnn").model  # conf/tuned/imdb_rnn.yaml
    assert rnn.bidirectional and rnn.readout == "max" and rnn.word_dropout == 0.2
    for model in ("rnn", "lstm", "gru"):  # the length story: the state carries the whole review
        cfg = compose_cfg("experiment=imdb_length", f"model={model}")
        assert not cfg.model.bidirectional and cfg.model.readout == "last"
        assert cfg.model.word_dropout == 0.0
    # a recurrent cell's direction is no setting of the baselines: it is not applied to them
    transformer = compose_cfg("experiment=imdb_length", "model=transformer").model
    assert "bidirectional" not in transformer
    assert transformer == compose_cfg("task=imdb", "model=transformer").model
