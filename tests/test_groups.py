"""The optimizer, the scheduler and the extra callbacks are config groups: a choice replaces the
default (nothing of AdamW's carries over), any argument of the class is a setting, a wrong one
is refused in one line before anything is written, and several callback configs combine."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from seqmodels.errors import ConfigError
from seqmodels.training.pipeline import build_run, train

from .helpers import check_before_writing, check_job

SGD_STEP = [
    "optimizer=sgd",
    "optimizer.momentum=0.9",
    "scheduler=step",
    "scheduler.step_size=10",
]


@pytest.mark.integration
def test_a_chosen_optimizer_and_scheduler_replace_the_defaults(compose_cfg):
    cfg = check_job(SGD_STEP)
    # replaced, not merged: the sine task's AdamW weight_decay 0.05 is gone
    assert OmegaConf.to_container(cfg.optimizer) == {
        "_target_": "torch.optim.SGD",
        "lr": 0.01,
        "momentum": 0.9,
    }
    _, module = build_run(cfg)
    configured = module.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert type(optimizer) is torch.optim.SGD
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["weight_decay"] == 0
    assert type(scheduler) is torch.optim.lr_scheduler.StepLR and scheduler.step_size == 10
    # a task's own optimizer settings follow its optimizer: AdamW keeps the sine task's
    assert compose_cfg().optimizer.weight_decay == 0.05
    assert compose_cfg("task=memory").optimizer._target_ == "torch.optim.Adam"


@pytest.mark.integration
@pytest.mark.parametrize(
    "args",
    [
        SGD_STEP,
        # a class named directly, with an argument only it takes: checked on the composed config
        [
            "optimizer._target_=torch.optim.SGD",
            "+optimizer.momentum=0.9",
            "+optimizer.nesterov=true",
        ],
        ["+optimizer.betas=[0.9,0.99]"],
        ["'callbacks=[gradient_flow,lr_monitor]'"],
        ["scheduler=plateau", "scheduler.patience=1"],
        ["experiment=imdb_length", "model=transformer"],
        ["experiment=imdb_length", "model=cnn"],
    ],
)
def test_valid_command_lines_are_accepted(args):
    plain = [a.strip("'") for a in args]
    assert check_before_writing(plain) == plain


@pytest.mark.integration
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["+optimizer.momentom=0.9"], "optimizer.momentom is no setting of this run"),
        (["optimizer=sgd", "+optimizer.momentom=0.9"], "did you mean optimizer.momentum?"),
        (["optimizer=sgd", "optimizer.momentom=0.9"], "did you mean optimizer.momentum?"),
        # Nesterov momentum needs momentum: torch's own check, before anything runs
        (["optimizer=sgd", "+optimizer.nesterov=true"], "optimizer: Nesterov momentum requires"),
        (["optimizer=sgd", "+optimizer.betas=[0.9,0.99]"], "torch.optim.sgd.SGD takes no betas"),
        (["scheduler=step", "scheduler.step_sise=10"], "did you mean scheduler.step_size?"),
        (["scheduler=step", "+scheduler.step_sise=10"], "did you mean scheduler.step_size?"),
        (["scheduler=plateau", "scheduler.factor=2"], "scheduler: Factor should be < 1.0"),
        (["optimizer._target_=torch.optim.Nope"], "optimizer._target_=torch.optim.Nope is not"),
        (["model=transformer", "+model.bidirectional=true"], "TransformerNet takes no"),
        (["model=transformer", "model.num_heads=5"], "model.num_heads=5 must divide"),
        (["model=cnn", "model.kernel_sizes=[0]"], "model.kernel_sizes=[0] must be widths"),
        (
            ["+task.module.optimizer={_target_: torch.optim.SGD, lr: 0.1}"],
            "task.module.optimizer is given by the run (optimizer=<name>",
        ),
        (["callbacks=nothing"], "callbacks=nothing is not a callbacks config"),
        (["'callbacks=[gradient_flow,nothing]'"], "callbacks=nothing is not a callbacks config"),
    ],
)
def test_a_wrong_argument_is_refused_in_one_line_before_anything_is_written(
    tmp_path, args, message
):
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError) as err:
        check_before_writing([*(a.strip("'") for a in args), f"hydra.run.dir={run_dir}"])
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not run_dir.exists()


@pytest.mark.integration
def test_callbacks_combine_and_lr_monitor_logs_the_learning_rate(compose_cfg, tmp_path):
    cfg = compose_cfg("callbacks=[gradient_flow,lr_monitor]", *SGD_STEP, "threads=1")
    assert set(cfg.callbacks) == {"gradient_flow", "lr_monitor"}
    OmegaConf.update(cfg, "trainer.max_epochs", 3)
    train(cfg, tmp_path / "run")
    with (tmp_path / "run" / "metrics.csv").open() as file:
        rates = [float(r["lr-SGD"]) for r in csv.DictReader(file) if r.get("lr-SGD")]
    assert rates == [0.01, 0.01, 0.01]  # StepLR halves it after 10 epochs, not before
    assert (tmp_path / "run" / "gradient_flow.json").is_file()


class PlainNet(torch.nn.Module):
    """A network that is no SequenceNet: it trains, but has no trace_inputs()."""

    def __init__(self, input_size: int = 1, output_size: int = 1, vocab_size: int | None = None):
        super().__init__()
        self.linear = torch.nn.Linear(input_size, output_size)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.linear(x.mean(dim=1))  # (B, output_size)


PLAIN = "tests.test_groups.PlainNet"


@pytest.mark.integration
def test_a_network_without_trace_inputs_trains_and_gradient_flow_refuses_it(compose_cfg, tmp_path):
    plain = OmegaConf.create({"_target_": PLAIN, "name": "plain"})
    cfg = compose_cfg("threads=1", "trainer.max_epochs=2")
    cfg.model = plain
    assert train(cfg, tmp_path / "plain")["model"] == "plain"
    cfg = compose_cfg("callbacks=gradient_flow", "threads=1", "trainer.max_epochs=2")
    cfg.model = plain
    with pytest.raises(ConfigError) as err:
        train(cfg, tmp_path / "traced")
    assert "callbacks.gradient_flow needs a network with trace_inputs()" in str(err.value)
    assert "model=plain (PlainNet) has none" in str(err.value)
    assert not list(Path(tmp_path / "traced").glob("**/*.ckpt"))  # refused before training
