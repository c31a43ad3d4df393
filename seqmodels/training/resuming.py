"""Continuing a run (`resume=`): the config it continues with (its own, with the overrides a
resumed run may change) and the checks of the checkpoint it continues from; and a new run from
a checkpoint's weights (`ckpt_path=`): the checks that they fit it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from seqmodels.checkpoints import read_checkpoint, task_name
from seqmodels.config.keys import RUN_KEYS
from seqmodels.errors import ConfigError
from seqmodels.tasks.base import SeqModule
from seqmodels.training.folder import RunFolder

# What may differ when a run continues: where and how fast it runs, how long, what it logs.
# Everything else comes from the run's own saved config; see `resumed_config`.
RESUME_OVERRIDES = (
    "task.max_epochs",
    "trainer.max_epochs",
    "trainer.accelerator",
    "trainer.devices",
    "trainer.num_nodes",
    "trainer.precision",
    "trainer.enable_progress_bar",
    "trainer.progress_bar_refresh_rate",
    "threads",
    "logger",
    "callbacks",
    "task.datamodule.data_dir",  # the same data, where this machine has it
    "task.datamodule.path",  # (a series whose scale differs is refused: check_resumable)
    "task.datamodule.cache_dir",
    "task.datamodule.num_workers",
    "task.datamodule.pin_memory",
)


def resumed_config(
    cfg: DictConfig, typed: list[str], choices: dict[str, Any], folder: RunFolder, field: str
) -> DictConfig:
    """The run's own saved config, with the typed overrides that `RESUME_OVERRIDES` allows.

    `cfg` is what conf/ composes today with the `typed` overrides and group `choices`; only the
    allowed keys are taken from it. Any other typed override that would change the saved run
    raises ConfigError naming it, so that a resumed run is always the run it claims to be
    (conf/ edited since, or a typed learning rate, change nothing silently).
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    saved = folder.saved_config()
    check_config_format(saved, folder, field)
    saved_choices = folder.saved_choices()
    parser = OverridesParser.create()
    allowed = []
    for text in typed:
        key = parser.parse_override(text).key_or_group
        if key in RUN_KEYS or key.startswith("hydra"):
            continue
        if key in RESUME_OVERRIDES or key.split(".")[0] in ("logger", "callbacks"):
            allowed.append(key)
            continue
        if key in choices or key in saved_choices:  # a config group: task=, model=, ...
            same = choices.get(key) == saved_choices.get(key)
        else:
            same = _plain(OmegaConf.select(cfg, key)) == _plain(OmegaConf.select(saved, key))
        if not same:
            ran_as = " ".join(folder.saved_overrides()) or "its defaults"
            raise ConfigError(
                f"{field}={folder.path} continues that run with its own settings, and {text} "
                "would change them (a resumed run may only change its epochs, devices, "
                "precision, threads, logging and data location: seqmodels.training.resuming."
                f"RESUME_OVERRIDES); to train with {text}, start a new run: python train.py "
                f"{ran_as} {text}"
            )
    for key in allowed:
        OmegaConf.update(saved, key, OmegaConf.select(cfg, key), merge=False, force_add=True)
    for key in RUN_KEYS:  # how it runs now; the weights it started from stay its own
        if key != "ckpt_path":
            OmegaConf.update(saved, key, cfg.get(key), force_add=True)
    return saved


def check_config_format(saved: DictConfig, folder: RunFolder, field: str) -> None:
    """Refuses to continue a run saved by seqmodels 0.1 (checkpoint format 1: its config names
    no network class and keeps the optimizer under task.module), which this version can't
    rebuild as it ran; its checkpoints still load with `load_model`."""
    model = saved.get("model")
    if saved.get("optimizer") is None or not (
        isinstance(model, DictConfig) and "_target_" in model
    ):
        raise ConfigError(
            f"{field}={folder.path} was saved by seqmodels 0.1 (checkpoint format 1), before "
            "models and optimizers were config groups, and can't be continued by this version; "
            "load its model with seqmodels.load_model, or start a new run"
        )


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


def check_task(
    checkpoint: dict, path: str | Path, task: str, module_target: str, field: str = "ckpt_path"
) -> None:
    """Refuses a checkpoint of another task before any data is read (`field`: the key that
    named it, resume or ckpt_path)."""
    saved_class, saved_task = checkpoint["seqmodels_class"], task_name(checkpoint)
    if saved_class != module_target.rsplit(".", 1)[-1] or saved_task not in (task, "?"):
        raise ConfigError(
            f"{field}={path} holds a {saved_class} of task={saved_task}, but this run "
            f"is task={task}: give a checkpoint of task={task}, or task={saved_task}"
        )


def check_resumable(checkpoint: dict, path: str | Path, model: SeqModule, field: str) -> None:
    """Refuses a checkpoint to continue from whose model settings differ from `model`'s, or
    with no training state. Hyperparameters other than the optimizer's must match: the weights
    would not fit otherwise, and a run continued with another model would no longer be the run
    it claims. (`field`: the key that named it.)"""
    changed = _changed_settings(checkpoint, model)
    if changed:
        raise ConfigError(
            f"{field}={path} was trained with other settings: {'; '.join(changed[:4])}; resume "
            "with the settings of its run, or start a new run"
        )
    if "loops" not in checkpoint:
        raise ConfigError(
            f"{field}={path} holds weights only, no training state to resume; give a run "
            "folder (its last.ckpt), or start a new run from these weights: ckpt_path="
        )


def _changed_settings(checkpoint: dict, model: SeqModule) -> list[str]:
    """`key=saved (this run: now)` for each hyperparameter but the optimizer's and
    scheduler's that differs between a checkpoint and `model`."""
    saved, now = _flatten(checkpoint.get("hyper_parameters", {})), _flatten(dict(model.hparams))
    changed = [
        f"{key}={saved.get(key)!r} (this run: {now.get(key)!r})"
        for key in sorted(set(saved) | set(now))
        if key.split(".")[0] not in ("optimizer", "scheduler") and now.get(key) != saved.get(key)
    ]
    return [c if not c.startswith("vocab=") else "vocab (another vocabulary)" for c in changed]


def load_weights(module: SeqModule, checkpoint: dict, path: str | Path) -> None:
    """Starts a new run from a checkpoint's weights, and nothing else of its run (optimizer,
    schedule, epochs, stop decision, best record, folder). The network must be the same shape
    (ConfigError naming the settings that differ), and an IMDB model's vocabulary the same
    (the embeddings' rows are its words)."""
    saved, own = checkpoint["state_dict"], module.state_dict()
    misfit = sorted(
        key
        for key in set(saved) | set(own)
        if key not in saved or key not in own or saved[key].shape != own[key].shape
    )
    vocab = checkpoint.get("hyper_parameters", {}).get("vocab")
    if vocab is not None and vocab != module.hparams.get("vocab"):
        misfit.append("vocab")
    if not misfit:
        module.load_state_dict(saved)
        return
    net = [c for c in _changed_settings(checkpoint, module) if c.startswith(("net.", "vocab"))]
    why = "; ".join(c.replace("net.", "model.", 1) for c in net[:4]) or f"{misfit[0]} differs"
    raise ConfigError(
        f"ckpt_path={path} holds weights of another network than this run's ({why}): a new run "
        "from a checkpoint takes its weights, which fit only the same network and data "
        "vocabulary; give the checkpoint's model settings, or leave ckpt_path out"
    )


def _flatten(values: dict, prefix: str = "") -> dict:
    """{"net": {"cell": "lstm"}} -> {"net.cell": "lstm"}"""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_start_checkpoint(cfg: DictConfig, folder: Path | None) -> None:
    """The checkpoint the run would continue from (`resume=`: the one it names, or its folder's
    last.ckpt) or start from (`ckpt_path=`), read without running code: missing, unreadable or
    of another task raises ConfigError naming the key."""
    from seqmodels.training.folder import resume_checkpoint

    path, field_name = cfg.get("ckpt_path"), "ckpt_path"
    if folder is not None:
        path, field_name = resume_checkpoint(cfg.get("resume")), "resume"
        if path is None and (Path(folder) / "checkpoints" / "last.ckpt").is_file():
            path = Path(folder) / "checkpoints" / "last.ckpt"
    if path:
        saved = read_checkpoint(path, field=field_name)
        check_task(saved, path, cfg.task.name, cfg.task.module._target_, field_name)
