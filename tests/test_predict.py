"""Forecaster.predict: one window or a batch, any array type, in eval mode, in series units."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqmodels.data import SineDataModule
from seqmodels.tasks import Forecaster

pytestmark = pytest.mark.unit

ADAMW = {"name": "AdamW", "lr": 1e-3}


@pytest.fixture
def forecaster() -> Forecaster:
    torch.manual_seed(0)
    data = SineDataModule()
    net = {"cell": "lstm", "hidden_size": 8, "num_layers": 2, "dropout": 0.5}
    return Forecaster(net, ADAMW, **data.model_kwargs).train()  # training mode: dropout on


def test_one_window_a_batch_and_a_feature_axis_give_the_same_next_values(forecaster):
    windows = np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32)
    batch = forecaster.predict(windows)
    assert batch.shape == (4,) and batch.dtype == torch.float32
    torch.testing.assert_close(forecaster.predict(torch.from_numpy(windows)[..., None]), batch)
    torch.testing.assert_close(forecaster.predict(windows.tolist()), batch)
    one = forecaster.predict(windows[0].tolist())  # a plain list of `window` values
    assert one.shape == (1,)
    torch.testing.assert_close(one[0], batch[0])


def test_predict_runs_in_eval_mode_without_grad_and_keeps_the_models_mode(forecaster):
    windows = torch.randn(3, 10)
    first, second = forecaster.predict(windows), forecaster.predict(windows)
    torch.testing.assert_close(first, second)  # dropout (p=0.5) would make these differ
    assert not first.requires_grad and forecaster.training  # training mode given back
    with torch.no_grad():
        torch.testing.assert_close(first, forecaster.eval()(windows))


def test_predictions_are_in_the_series_units():
    """A window-scaled model's forecast moves with the series' level: +100 in, +100 out."""
    torch.manual_seed(0)
    model = Forecaster({"cell": "gru", "hidden_size": 4}, ADAMW, window=5)
    windows = torch.randn(2, 5)
    torch.testing.assert_close(model.predict(windows + 100), model.predict(windows) + 100)


@pytest.mark.parametrize(
    "shape", [(9,), (2, 11), (2, 10, 2), (2, 3, 10, 1), (0,)], ids=lambda s: str(s)
)
def test_a_wrong_shape_is_a_value_error_naming_the_expected_one(forecaster, shape):
    with pytest.raises(ValueError, match=r"\(N, window\).*window=10; got \(") as err:
        forecaster.predict(np.zeros(shape))
    assert str(err.value).endswith(f"got {shape}")  # the shape as passed


@pytest.mark.parametrize("windows", ["abc", [[1.0, "x"]]], ids=["str", "mixed"])
def test_values_that_are_no_numbers_are_a_value_error(forecaster, windows):
    with pytest.raises(ValueError, match=r"predict takes numbers in windows of shape \(window,\)"):
        forecaster.predict(windows)
