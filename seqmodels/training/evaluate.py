"""Re-testing a trained model: `python eval.py ckpt_path=<run folder or .ckpt> [data overrides]`.

The checkpoint's own run gives the data (its saved `task.datamodule`, its seed), the trainer
and the evaluation callbacks (the references of `task.callbacks`); data overrides change that
data: `task.datamodule.<key>=...`, `seed=...`, or `experiment=<name>`, whose data settings
(only them) apply, e.g. a sine model tested on `experiment=sine_long`'s 2,000 test windows.
`trainer.<key>=...` and `trainer=<name>` change how it runs (one process always). The model is
the checkpoint's, whatever else is typed: other settings are refused.

It writes `metrics.json` (the test metrics, with what was evaluated) and `test_predictions.csv`
(one row per test example) into a folder of its own, `outputs/eval/DATE/TIME-PID/`; the run
folder is only read. Built from the training pipeline's pieces (`build`, `make_trainer`,
`load_model`, the task's callbacks), as lightning-hydra-template's eval.py reuses its train.py.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from seqmodels.errors import ConfigError

log = logging.getLogger(__name__)

# What an evaluation may change: its data (the data's seed, an experiment's data settings, a
# task= that must be the checkpoint's), how it runs, and which checkpoint
KEYS = ("seed", "experiment", "task", "trainer", "threads", "ckpt_path")
PREFIXES = ("task.datamodule.", "trainer.")
SECTIONS = ("task.datamodule", "trainer")  # the sections typed overrides change
# Data-derived model settings the data must match (a window length, a vocabulary); the others
# (a series' scale, how reviews are cut) the model keeps or reads from the data.
STRUCTURAL = ("window", "vocab", "vocab_size", "n_classes")
ONE_PROCESS = {"strategy": "auto", "devices": 1, "num_nodes": 1}


@dataclass
class Evaluation:
    """What an evaluation tests: the checkpoint, its run folder (None for a bare .ckpt), and
    the config it runs with (the run's own, its data changed by the typed overrides)."""

    checkpoint: Path
    run: Path | None
    config: DictConfig
    overrides: list[str]
    changed: dict[str, Any]  # the typed changes, as "section.key": value


def _key(override: str) -> str:
    return override.lstrip("+~").partition("=")[0]


def allowed(override: str) -> bool:
    """Whether a typed override changes the data or how the evaluation runs."""
    key = _key(override)
    return key in KEYS or key.startswith(PREFIXES)


def quote_path(argument: str) -> str:
    """`ckpt_path=PATH` with PATH quoted for Hydra's override grammar, which reads `=` and `,`
    (in every sweep job's folder name, `4_model=lstm,seed=1`) as syntax; other arguments, and
    a path already quoted, as they are."""
    key, sep, value = argument.partition("=")
    if key != "ckpt_path" or not sep or value[:1] in ("'", '"'):
        return argument
    return f"{key}='" + value.replace("'", "\\'") + "'"


def plan(ckpt_path: str, typed: list[str]) -> Evaluation:
    """Reads the checkpoint and its run's config and applies the typed data and trainer
    overrides; ConfigError (one line) for anything else typed, a checkpoint that isn't one, or
    data of another task. Composes conf/train.yaml with Hydra's compose API (needs Hydra
    initialized: inside eval.py, or `initialize_config_dir` in a test)."""
    from seqmodels.checkpoints import find_checkpoint, read_checkpoint, task_name
    from seqmodels.training.folder import RunFolder

    refused = [o for o in typed if not allowed(o)]
    if refused:
        raise ConfigError(
            f"{refused[0]}: eval.py tests the checkpoint's own model; it takes data settings "
            "(task.datamodule.<key>=..., seed=..., experiment=<name>) and trainer settings "
            "(trainer.<key>=..., trainer=<name>, threads=...)"
        )
    checkpoint = find_checkpoint(ckpt_path)
    saved = read_checkpoint(checkpoint, field="ckpt_path")
    task = task_name(saved)
    run = _run_folder(checkpoint)
    changes = [o for o in typed if _key(o) != "ckpt_path"]
    if run is not None:
        config = RunFolder(run).saved_config()
        task = str(config.task.name)
    elif task == "?":
        raise ConfigError(
            f"ckpt_path={ckpt_path} is outside a run folder and predates the task record; give "
            "the run folder it came from"
        )
    else:  # a bare checkpoint: the task's default data, changed by what is typed
        config = _compose([f"task={task}", f"model={_model_choice(saved)}"])
    changed = _typed_changes(task, changes)
    for key, value in changed.items():
        OmegaConf.update(config, key, value, merge=False, force_add=True)
    with open_dict(config):
        config.trainer.update(ONE_PROCESS)
        config.ckpt_path, config.resume, config.resume_sweep = None, None, None
    return Evaluation(checkpoint, run, config, changes, changed)


def _run_folder(checkpoint: Path) -> Path | None:
    folder = checkpoint.parent.parent
    return folder if (folder / ".hydra" / "config.yaml").is_file() else None


def _model_choice(saved: dict[str, Any]) -> str:
    net = (saved.get("hyper_parameters") or {}).get("net") or {}
    return str(net.get("name") or net.get("cell") or "lstm")


def _compose(overrides: list[str]) -> DictConfig:
    from hydra import compose

    return compose("train", overrides=overrides)


def _typed_changes(task: str, changes: list[str]) -> dict[str, Any]:
    """The settings of SECTIONS (and `seed`, `threads`) that the typed overrides change, found
    by composing the task's config with and without them."""
    if not changes:
        return {}
    from hydra.errors import HydraException

    try:
        base = _compose([f"task={task}"])
        changed = _compose([f"task={task}", *changes])
    except HydraException as err:
        raise ConfigError(str(err).splitlines()[0]) from None
    if changed.task.name != base.task.name:
        raise ConfigError(
            f"{' '.join(changes)} names data of task {changed.task.name}; the checkpoint is a "
            f"{task} model"
        )
    found: dict[str, Any] = {}
    for section in SECTIONS:
        old = _flat(OmegaConf.select(base, section))
        new = _flat(OmegaConf.select(changed, section))
        found |= {f"{section}.{k}": v for k, v in new.items() if old.get(k, object()) != v}
    for key in ("seed", "threads"):
        if any(_key(o) == key for o in changes):
            found[key] = changed[key]
    return found


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    container = OmegaConf.to_container(node, resolve=False) if OmegaConf.is_config(node) else node
    flat: dict[str, Any] = {}
    for key, value in cast(dict, container or {}).items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_out_dir(out_dir: Path, evaluation: Evaluation) -> None:
    """Refuses to write into the run folder (or inside it) or over an earlier evaluation."""
    if evaluation.run is not None:
        run = evaluation.run.resolve()
        if out_dir.resolve() == run or run in out_dir.resolve().parents:
            raise ConfigError(
                f"hydra.run.dir={out_dir} is inside the run folder {evaluation.run}; an "
                "evaluation never writes there: give another folder (or none)"
            )
    if (out_dir / "metrics.json").is_file():
        raise ConfigError(
            f"{out_dir} already holds an evaluation's metrics.json; give another hydra.run.dir"
        )


def check_data(module: Any, datamodule: Any, changed: dict[str, Any]) -> None:
    """Refuses data whose shape the model can't read: another window length, vocabulary, or
    number of symbols than it was trained on."""
    kwargs = datamodule.model_kwargs
    for name in STRUCTURAL:
        if name in kwargs and name in module.hparams and kwargs[name] != module.hparams[name]:
            typed = ", ".join(f"{k}={v}" for k, v in changed.items() if k.startswith("task."))
            data = typed or "the run's own"
            theirs, ours = kwargs[name], module.hparams[name]
            if name == "vocab":
                theirs, ours = f"{len(theirs)} words, another", f"{len(ours)} words, its own"
            raise ConfigError(
                f"the data ({data}) gives {name}={theirs} but the model was trained with "
                f"{name}={ours}; evaluate it on data of the same shape"
            )


def evaluate(evaluation: Evaluation, out_dir: Path) -> dict[str, Any]:
    """Tests the checkpoint on the evaluation's data; writes metrics.json and
    test_predictions.csv (and the task's plots) into `out_dir`; returns the metrics."""
    import lightning as L
    import torch

    from seqmodels.checkpoints import load_model
    from seqmodels.evaluation.predictions import TestPredictions
    from seqmodels.files import write_json
    from seqmodels.training.folder import now
    from seqmodels.training.pipeline import build, make_trainer

    cfg = evaluation.config
    check_out_dir(out_dir, evaluation)
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build(cfg.task.datamodule)
    datamodule.setup("test")
    module = load_model(evaluation.checkpoint)
    check_data(module, datamodule, evaluation.changed)
    callbacks = [build(c) for c in (cfg.task.get("callbacks") or {}).values()]
    trainer = make_trainer(
        cfg,
        [*callbacks, TestPredictions()],
        logger=False,
        enable_checkpointing=False,
        default_root_dir=out_dir,
    )
    started = now()
    (tested,) = trainer.test(module, datamodule=datamodule, verbose=False)
    metrics = {
        "status": "ok",
        "task": cfg.task.name,
        "model": module.model_name,
        "checkpoint": str(evaluation.checkpoint.resolve()),
        "run": str(evaluation.run.resolve()) if evaluation.run else None,
        "overrides": evaluation.overrides,
        "seed": cfg.seed,
        **{k: v for k, v in tested.items() if k.startswith("test/")},
        "data": OmegaConf.to_container(cfg.task.datamodule, resolve=True),
        "started_at": started,
        "finished_at": now(),
    }
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def report(out_dir: Path, metrics: dict[str, Any], headline: str | None) -> None:
    """The end of an evaluation: its test metrics, the headline metric, its folder."""
    tests = {k: v for k, v in metrics.items() if k.startswith("test/") and k != headline}
    log.info("test: %s", "  ".join(f"{k} {v:.4g}" for k, v in sorted(tests.items())))
    if headline in metrics:
        log.info("%s = %.4g", headline, metrics[headline])
    log.info("Evaluation folder: %s", out_dir)


def remove_unstarted(out_dir: Path) -> None:
    """Removes an evaluation folder that holds nothing but its log (refused before it ran)."""
    if out_dir.is_dir() and {p.name for p in out_dir.iterdir()} <= {"eval.log"}:
        shutil.rmtree(out_dir)


class EvaluationCheck(Callback):
    """Hydra callback (conf/eval.yaml): checks what eval.py was given before Hydra writes its
    folder: a single run (no -m), a checkpoint, only data and trainer overrides."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not config.get("ckpt_path"):
            raise SystemExit(
                "error: eval.py needs ckpt_path=<run folder or .ckpt>, e.g. python eval.py "
                "ckpt_path=outputs/2026-11-29/14-03-11-48213_sine_lstm"
            )
        try:
            evaluation = plan(str(config.ckpt_path), list(config.hydra.overrides.task))
            check_out_dir(Path(config.hydra.run.dir), evaluation)
        except ConfigError as err:
            raise SystemExit(f"error: {err}") from None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        raise SystemExit("error: eval.py tests one checkpoint; run it once per checkpoint")
