"""One suite every task inherits: it runs over every conf/task/*.yaml, so a new task is tested
the moment its config exists. A task conforms when its config says what the pipeline and the
summaries read, its datamodule's `model_kwargs` build its module for every model, its training
batches are this rank's share under DDP (disjoint, covering the data, new every epoch, the same
for the same seed and epoch), and a run records its validation and test metrics."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.data import _set_sampler_epoch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from seqmodels.checkpoints import read_checkpoint
from seqmodels.tasks.base import SeqModule
from seqmodels.training.pipeline import build_run, train

from .helpers import CONF

TASKS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
WORLD_SIZE = 2


def task_cfg(compose_cfg, task: str, tiny_imdb: Path, *overrides: str) -> DictConfig:
    """The task's config; IMDB reads the tiny parquet copy instead of the real data."""
    data = [f"task.datamodule.data_dir={tiny_imdb}"] if task == "imdb" else []
    return compose_cfg(f"task={task}", *data, *overrides)


def epoch_indices(loader: DataLoader, epoch: int) -> list[int]:
    """The sample indices a training loader draws in `epoch`, set up as Lightning does."""
    _set_sampler_epoch(loader, epoch)
    batches = loader.batch_sampler if loader.batch_sampler is not None else loader.sampler
    return [int(i) for batch in batches for i in batch]


@pytest.mark.unit
def test_the_four_tasks_are_there():
    assert {"sine", "imdb", "memory", "series"} <= set(TASKS)


@pytest.mark.integration
@pytest.mark.parametrize("task", TASKS)
def test_the_config_says_what_the_pipeline_and_summaries_read(compose_cfg, task, tiny_imdb):
    cfg = task_cfg(compose_cfg, task, tiny_imdb).task
    assert cfg.name == task  # the name checkpoints record and summaries group by
    assert cfg.monitor.startswith("val/") and cfg.mode in ("min", "max")
    assert cfg.test_metric.startswith("test/")
    assert cfg.max_epochs > 0 and "_target_" in cfg.datamodule and "_target_" in cfg.module
    for callback in (cfg.get("callbacks") or {}).values():  # evaluation extras build
        assert isinstance(instantiate(callback), L.Callback)


@pytest.mark.integration
@pytest.mark.parametrize("task", TASKS)
def test_the_datamodule_model_kwargs_build_the_module_for_every_model(compose_cfg, task, tiny_imdb):
    for model in MODELS:
        cfg = task_cfg(compose_cfg, task, tiny_imdb, f"model={model}")
        datamodule, module = build_run(cfg)
        assert isinstance(module, SeqModule) and module.task == task
        assert module.model_name == model  # the network its model config names
        datamodule.setup("fit")
        batch = next(iter(datamodule.train_dataloader()))
        loss, outputs, targets = module._loss_and_outputs(batch)  # the batches fit the module
        assert loss.ndim == 0 and torch.isfinite(loss) and len(outputs) == len(targets)
        logged = {"val/loss", *module.val_metrics.keys()}
        assert cfg.task.monitor in logged, f"the module logs {sorted(logged)}"
        for stage in ("train", "val", "test"):  # what the config check reads (METRICS)
            built = {f"{stage}/loss", *getattr(module, f"{stage}_metrics").keys()}
            assert set(type(module).logged(stage)) == built


@pytest.mark.integration
@pytest.mark.parametrize("task", TASKS)
def test_training_batches_are_this_ranks_share_new_every_epoch(compose_cfg, task, tiny_imdb):
    cfg = task_cfg(compose_cfg, task, tiny_imdb)
    datamodules = []
    for rank in range(WORLD_SIZE):  # a stand-in for the trainer of each DDP process
        datamodule = instantiate(cfg.task.datamodule)
        datamodule.trainer = SimpleNamespace(world_size=WORLD_SIZE, global_rank=rank)
        datamodule.prepare_data()
        datamodule.setup("fit")
        datamodules.append(datamodule)
    loaders = [datamodule.train_dataloader() for datamodule in datamodules]
    check_rank_shares(loaders)
    # the loader yields what its sampler draws: batches of at most batch_size samples
    batch = next(iter(loaders[0]))
    assert 0 < len(batch[-1]) <= cfg.task.datamodule.batch_size


def check_rank_shares(loaders: list[DataLoader]) -> None:
    """Asserts that the ranks' loaders draw equal, disjoint shares covering the data, another
    share each epoch and the same one for the same epoch."""
    n = len(loaders[0].dataset)
    assert n >= WORLD_SIZE
    shares = {}
    for epoch in (0, 1):
        ranks = [epoch_indices(loader, epoch) for loader in loaders]
        assert len(ranks[0]) == len(ranks[1]) == -(-n // WORLD_SIZE)  # nobody waits on another
        assert set(ranks[0]) | set(ranks[1]) == set(range(n))  # together: every sample
        # disjoint, but for the up to world_size - 1 samples repeated to even out the shares
        repeated = 0 if n % WORLD_SIZE == 0 else WORLD_SIZE - 1
        assert len(set(ranks[0]) & set(ranks[1])) <= repeated
        assert len(set(ranks[0])) == len(ranks[0])
        shares[epoch] = ranks[0]
    assert set(shares[0]) != set(shares[1])  # each epoch another share
    assert epoch_indices(loaders[0], 1) == shares[1]  # the same for the same seed and epoch


@pytest.mark.unit
def test_the_share_check_catches_a_loader_that_gives_every_rank_the_whole_set():
    dataset = TensorDataset(torch.arange(10.0), torch.arange(10.0))
    with pytest.raises(AssertionError):
        check_rank_shares([DataLoader(dataset, batch_size=4, shuffle=True) for _ in range(2)])


@pytest.mark.integration
@pytest.mark.parametrize("task", TASKS)
def test_a_run_records_the_monitor_and_the_test_metric_and_reloads(
    compose_cfg, task, tiny_imdb, tmp_path
):
    import seqmodels

    cfg = task_cfg(compose_cfg, task, tiny_imdb, "trainer=debug", "threads=1")
    cfg.trainer.fast_dev_run = False  # one short epoch, so that a best checkpoint is written
    OmegaConf.update(cfg, "trainer.limit_train_batches", 2, force_add=True)
    OmegaConf.update(cfg, "trainer.max_epochs", 1)
    train(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["task"] == task and saved["status"] == "ok"
    assert isinstance(saved[cfg.task.monitor], float)
    assert isinstance(saved[cfg.task.test_metric], float)  # what summaries lead with
    model = seqmodels.load_model(tmp_path / "run")  # no config needed: the checkpoint says
    assert type(model).__name__ == cfg.task.module._target_.rsplit(".", 1)[-1]
    assert model.task == task
    assert read_checkpoint(saved["best_checkpoint"])["seqmodels_task"] == task
