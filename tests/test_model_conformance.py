"""One suite every model inherits: it runs over every conf/model/*.yaml, so a new model is
tested the moment its config exists. A model conforms when its config names an `nn.Module`
built from the data's sizes, maps feature sequences and token ids to one output per sequence,
whatever the padding, learns (gradients reach its parameters), traces its inputs for the
gradient-flow diagnostic, and trains, checkpoints and reloads on every task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from seqmodels.models import build_net, net_class
from seqmodels.training.pipeline import build_run, train

from .helpers import CONF

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
TASKS = sorted(p.stem for p in (CONF / "task").glob("*.yaml"))


def model_config(model: str) -> dict:
    config = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{model}.yaml"))
    assert isinstance(config, dict)
    return config


def small(model: str) -> dict:
    """The model's config at a size that builds in milliseconds."""
    config = model_config(model) | {"hidden_size": 8, "embedding_dim": 8}
    config.pop("chrono_init", None)
    return config


@pytest.mark.unit
def test_the_five_models_are_there():
    assert {"rnn", "lstm", "gru", "transformer", "cnn"} <= set(MODELS)


@pytest.mark.unit
@pytest.mark.parametrize("model", MODELS)
def test_the_config_names_a_network_and_its_own_name(model):
    config = model_config(model)
    assert issubclass(net_class(config["_target_"]), torch.nn.Module)
    assert config["name"] == model  # what run folders, metrics.json and summaries show


@pytest.mark.unit
@pytest.mark.parametrize("model", MODELS)
def test_features_and_tokens_give_one_output_per_sequence(model):
    torch.manual_seed(0)
    features = build_net(small(model), input_size=3, output_size=2)
    assert features(torch.randn(4, 7, 3)).shape == (4, 2)
    assert features(torch.randn(4, 7, 3), torch.tensor([7, 1, 4, 2])).shape == (4, 2)
    tokens = build_net(small(model), vocab_size=20, output_size=5)
    assert tokens(torch.randint(1, 20, (4, 9))).shape == (4, 5)
    assert tokens(torch.randint(1, 20, (4, 9)), torch.tensor([9, 1, 5, 3])).shape == (4, 5)


@pytest.mark.unit
@pytest.mark.parametrize("model", MODELS)
def test_the_output_ignores_padding_amount_and_side(model):
    torch.manual_seed(0)
    net = build_net(small(model), vocab_size=30, output_size=1).eval()
    review = torch.randint(2, 30, (11,))
    with torch.no_grad():
        reference = net(review[None])
        for pad in (1, 4, 50):
            zeros = torch.zeros(pad, dtype=torch.long)
            pre = net(torch.cat([zeros, review])[None])
            post = net(torch.cat([review, zeros])[None])
            torch.testing.assert_close(pre, reference, atol=1e-5, rtol=0)
            torch.testing.assert_close(post, reference, atol=1e-5, rtol=0)
        # inside a right-padded batch next to a longer review, with explicit lengths
        batch = torch.zeros(2, 40, dtype=torch.long)
        batch[0, :11], batch[1] = review, torch.randint(2, 30, (40,))
        in_batch = net(batch, torch.tensor([11, 40]))[:1]
        torch.testing.assert_close(in_batch, reference, atol=1e-5, rtol=0)
        # feature sequences: steps past the given lengths never count, whatever they hold
        series = build_net(small(model), input_size=2, output_size=1).eval()
        x = torch.randn(1, 6, 2)
        padded = torch.cat([x, 100 * torch.randn(1, 9, 2)], dim=1)
        torch.testing.assert_close(series(padded, torch.tensor([6])), series(x), atol=1e-5, rtol=0)


@pytest.mark.unit
@pytest.mark.parametrize("model", MODELS)
def test_every_parameter_learns_and_the_inputs_can_be_traced(model):
    torch.manual_seed(0)
    net = build_net(small(model) | {"readout": "attention"}, vocab_size=20, output_size=1)
    ids = torch.randint(1, 20, (3, 8))
    with net.trace_inputs() as trace:  # what callbacks=gradient_flow differentiates by
        output = net(ids).sum()
    assert trace.inputs is not None
    (grad,) = torch.autograd.grad(output, trace.inputs)
    assert grad.shape[:2] == (3, 8) and grad.abs().sum(-1).gt(0).all()  # every step counts
    net(ids).sum().backward()
    silent = [
        name
        for name, p in net.named_parameters()
        if p.grad is None or (not p.grad.any() and "padding" not in name)
    ]
    assert silent == [], f"parameters no gradient reaches: {silent}"


@pytest.mark.unit
@pytest.mark.parametrize("model", MODELS)
def test_states_give_each_step_of_the_real_steps_and_mark_the_padding(model):
    """`model.states(x)` (what a notebook looks inside a model with): `(B, T, H)` states per
    step, the real steps' states independent of the padding after them, padding NaN."""
    torch.manual_seed(0)
    net = build_net(small(model), vocab_size=20, output_size=1)
    review = torch.randint(2, 20, (1, 6))
    alone = net.states(review)
    padded = net.states(torch.cat([review, torch.zeros(1, 4, dtype=torch.long)], dim=1))
    assert alone.hidden and list(padded.hidden) == list(alone.hidden)
    assert padded.real.tolist() == [[True] * 6 + [False] * 4]
    for name, h in padded.hidden.items():
        assert h.shape[:2] == (1, 10) and h[0, 6:].isnan().all()
        torch.testing.assert_close(h[:, :6], alone.hidden[name], atol=1e-5, rtol=0)


@pytest.mark.unit
@pytest.mark.parametrize("model", MODELS)
def test_a_setting_the_network_doesnt_take_is_refused_in_one_line(model):
    from seqmodels.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        build_net(small(model) | {"no_such_setting": 1}, input_size=1, output_size=1)
    assert "no_such_setting" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.integration
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_checkpoints_and_reloads_on_every_task(
    compose_cfg, task, model, tiny_imdb, tmp_path
):
    import seqmodels

    data = [f"task.datamodule.data_dir={tiny_imdb}"] if task == "imdb" else []
    cfg = compose_cfg(f"task={task}", f"model={model}", *data, "trainer=debug", "threads=1")
    cfg.trainer.fast_dev_run = False  # one short epoch, so that a best checkpoint is written
    OmegaConf.update(cfg, "trainer.limit_train_batches", 2, force_add=True)
    OmegaConf.update(cfg, "trainer.limit_val_batches", 2, force_add=True)
    OmegaConf.update(cfg, "trainer.max_epochs", 1)
    metrics = train(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["model"] == model and saved["status"] == "ok"
    assert (tmp_path / "run" / "curves.png").is_file()  # every task's run draws its curves
    assert metrics["params"] > 0 and isinstance(saved[cfg.task.test_metric], float)
    reloaded = seqmodels.load_model(tmp_path / "run")  # no config: the checkpoint says
    assert reloaded.model_name == model and type(reloaded.net).__name__ == type_name(model)
    _, module = build_run(cfg)
    best = torch.load(Path(saved["best_checkpoint"]), weights_only=True)["state_dict"]
    assert set(best) == set(module.state_dict())  # the same network, rebuilt from hparams


def type_name(model: str) -> str:
    return model_config(model)["_target_"].rsplit(".", 1)[-1]
