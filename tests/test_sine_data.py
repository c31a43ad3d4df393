import lightning as L
import numpy as np
import pytest
import torch
from lightning.fabric.utilities.data import _set_sampler_epoch

from seqmodels.data import SineDataModule, sine_series
from seqmodels.errors import ConfigError
from seqmodels.tasks import Forecaster


@pytest.mark.unit
def test_series_is_the_tutorials_formula_with_seeded_noise():
    noisy, clean = sine_series(100, noise=1.0, seed=7)
    t = np.arange(100)
    expected_noise = np.random.default_rng(7).random(100)
    np.testing.assert_allclose(clean, np.sin(np.pi * t * 2.025), atol=1e-6)
    np.testing.assert_allclose(noisy, np.sin(np.pi * t * 2.025) + expected_noise, atol=1e-6)


@pytest.mark.unit
def test_same_seed_same_data_and_another_seed_other_data():
    a, b, c = SineDataModule(seed=3), SineDataModule(seed=3), SineDataModule(seed=4)
    assert torch.equal(a.split("train").tensors[0], b.split("train").tensors[0])
    assert not torch.equal(a.split("train").tensors[0], c.split("train").tensors[0])


@pytest.mark.unit
def test_tutorial_defaults_give_90_windows_split_in_time_order():
    dm = SineDataModule()
    noisy, _ = dm.series
    sizes = {split: len(dm.split(split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 60, "val": 10, "test": 20}  # the tutorial's 70 / 20, val from the 70
    windows = torch.cat([dm.split(s).tensors[0] for s in ("train", "val", "test")])
    targets = torch.cat([dm.split(s).tensors[1] for s in ("train", "val", "test")])
    assert windows.shape == (90, 10)
    for i in range(90):
        np.testing.assert_array_equal(windows[i].numpy(), noisy[i : i + 10])
        assert targets[i].item() == noisy[i + 10]
    # the test set is the tutorial's last 20 windows: targets at steps 80..99
    np.testing.assert_array_equal(dm.split("test").tensors[1].numpy(), noisy[80:])


@pytest.mark.unit
def test_no_test_target_is_seen_in_training_or_validation():
    dm = SineDataModule()
    noisy, _ = dm.series
    seen = torch.cat(
        [
            dm.split("train").tensors[0].flatten(),
            dm.split("val").tensors[0].flatten(),
            dm.split("train").tensors[1],
            dm.split("val").tensors[1],
        ]
    )
    for value in dm.split("test").tensors[1]:
        assert not torch.any(seen == value)
    last_val_target_step = 10 + 60 + 10 - 1
    assert dm.split("val").tensors[1][-1].item() == noisy[last_val_target_step]


@pytest.mark.unit
def test_oracle_is_clean_signal_plus_noise_mean():
    dm = SineDataModule(noise=0.6, seed=1)
    _, clean = dm.series
    np.testing.assert_allclose(dm.oracle("test"), clean[80:] + 0.3, atol=1e-6)


@pytest.mark.unit
def test_long_series_builds_quickly_with_fractional_splits():
    dm = SineDataModule(n_points=100_000, val_size=0.1, test_size=0.2)
    assert len(dm.split("test")) == 19_998 and len(dm.split("val")) == 9_999
    assert len(dm.split("train")) == 99_990 - 19_998 - 9_999
    assert dm.split("train").tensors[0].shape[1] == 10


@pytest.mark.unit
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"window": 100}, "window"),
        ({"window": 0}, "window"),
        ({"n_points": 40, "val_size": 10, "test_size": 20}, "val_size"),
        ({"test_size": 1.5}, "test_size"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_settings_name_the_field(kwargs, field):
    with pytest.raises(ConfigError, match=field) as err:
        SineDataModule(**kwargs)
    assert "\n" not in str(err.value)


def _epoch_windows(loader, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """All training windows and targets a loader gives in `epoch`, ordered by window index."""
    _set_sampler_epoch(loader, epoch)  # what Lightning does when an epoch starts
    order = torch.tensor([i for batch in loader.sampler for i in batch])
    windows, targets = (torch.cat(parts) for parts in zip(*loader, strict=True))
    return windows[order.argsort()], targets[order.argsort()]


@pytest.mark.unit
def test_fresh_noise_redraws_training_windows_each_epoch_and_keeps_val_and_test():
    fixed = SineDataModule(n_points=300, val_size=30, test_size=40, seed=5)
    dm = SineDataModule(n_points=300, val_size=30, test_size=40, seed=5, fresh_noise=True)
    loader = dm.train_dataloader()
    first, first_targets = _epoch_windows(loader, 0)
    second, _ = _epoch_windows(loader, 1)
    again, again_targets = _epoch_windows(loader, 0)
    assert first.shape == fixed.split("train").tensors[0].shape == (220, 10)
    assert not torch.allclose(first, second)  # a new draw each epoch ...
    assert torch.equal(first, again) and torch.equal(first_targets, again_targets)  # ... seeded
    assert not torch.allclose(first, fixed.split("train").tensors[0])  # not the series' own draw
    # each window is the clean signal at its steps plus U[0, 1) noise; its target comes next
    _, clean = dm.series
    steps = np.arange(220)[:, None] + np.arange(11)
    values = torch.cat([first, first_targets[:, None]], dim=1).numpy()
    noise = values - clean[steps]
    assert noise.min() >= -1e-6 and noise.max() < 1 + 1e-6 and abs(noise.mean() - 0.5) < 0.05
    np.testing.assert_array_equal(values[1:, :-1], values[:-1, 1:])  # one draw per epoch
    for split in ("val", "test"):  # validation and test stay the fixed series' windows
        for a, b in zip(dm.split(split).tensors, fixed.split(split).tensors, strict=True):
            assert torch.equal(a, b)
    assert dm.model_kwargs == fixed.model_kwargs  # the scale from the fixed training stretch


@pytest.mark.unit
def test_clean_targets_are_the_clean_next_value_plus_the_noise_mean():
    dm = SineDataModule(
        n_points=300, val_size=30, test_size=40, noise=0.6, fresh_noise=True, clean_targets=True
    )
    loader = dm.train_dataloader()
    windows, targets = _epoch_windows(loader, 3)
    _, clean = dm.series
    np.testing.assert_allclose(targets.numpy(), clean[10:230] + 0.3, atol=1e-6)
    noise = windows.numpy() - clean[np.arange(220)[:, None] + np.arange(10)]
    assert noise.min() >= -1e-6 and noise.max() < 0.6 + 1e-6 and noise.std() > 0.15  # U[0, 0.6)


@pytest.mark.unit
def test_clean_targets_without_fresh_noise_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="clean_targets=true needs task.datamodule.fresh_noise"):
        SineDataModule(clean_targets=True)


@pytest.mark.integration
def test_fresh_noise_reaches_training_through_lightning(tmp_path):
    dm = SineDataModule(n_points=120, val_size=10, test_size=10, batch_size=100, fresh_noise=True)
    model = Forecaster(net={"cell": "rnn", "hidden_size": 2}, optimizer={"name": "SGD", "lr": 0})

    class Seen(L.Callback):
        def __init__(self) -> None:
            self.batches: list[torch.Tensor] = []

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            self.batches.append(batch[0].sum())

    seen = Seen()
    trainer = L.Trainer(
        max_epochs=3, callbacks=[seen], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)
    sums = seen.batches  # one batch of all 90 windows per epoch: their sums differ by epoch
    assert len(sums) == 3 and len({round(float(s), 4) for s in sums}) == 3
