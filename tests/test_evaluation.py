"""Evaluation: the baselines every run reports, the minimum-steps rule for the best checkpoint,
per-example test predictions, and `eval.py` re-testing a checkpoint on its own or other data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import initialize_config_dir

from seqmodels.errors import ConfigError

from .helpers import CONF, ROOT, assert_ok, quiet_trainer, read_rows, write_parquet_dir

# --- Baselines on the run's own test split ------------------------------------------------


@pytest.mark.unit
def test_the_linear_filter_is_least_squares_on_the_training_windows_alone():
    from seqmodels.data import SineDataModule
    from seqmodels.evaluation import LinearFilterForecast, WindowMeanForecast

    data = SineDataModule(seed=2)
    x, y = (t.numpy().astype(np.float64) for t in data.split("train").tensors)
    coef, *_ = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)
    test = data.split("test").tensors[0].numpy().astype(np.float64)
    forecast = LinearFilterForecast().reference(data)
    assert forecast.shape == (20,)
    assert forecast == pytest.approx(test @ coef[:-1] + coef[-1])
    assert WindowMeanForecast().reference(data) == pytest.approx(test.mean(axis=1))


@pytest.mark.unit
def test_imdb_chance_is_the_commoner_test_label(tiny_imdb):
    from seqmodels.data import IMDBDataModule

    data = IMDBDataModule(data_dir=str(tiny_imdb), max_len=30)
    assert data.chance_acc == 0.5  # the tiny test set alternates its labels


@pytest.mark.integration
def test_the_tfidf_reference_is_fit_on_the_runs_split_and_cached(tiny_imdb, monkeypatch):
    pytest.importorskip("sklearn")
    from seqmodels.data import IMDBDataModule
    from seqmodels.evaluation import bag_of_words

    calls = []
    fit = bag_of_words.tfidf_logistic_regression
    monkeypatch.setattr(
        bag_of_words, "tfidf_logistic_regression", lambda *a, **k: calls.append(a) or fit(*a, **k)
    )
    data = IMDBDataModule(data_dir=str(tiny_imdb), max_len=30, seed=1)
    first = bag_of_words.cached_tfidf_reference(data)
    assert first["test_acc"] > 0.9  # the synthetic reviews' sentiment words separate them
    again = bag_of_words.cached_tfidf_reference(IMDBDataModule(data_dir=str(tiny_imdb), seed=1))
    assert again["test_acc"] == first["test_acc"] and len(calls) == 1  # from the cache
    train_texts, train_labels, fit_index, val_index, test_texts, _ = calls[0]
    assert len(train_texts) == 200 and len(test_texts) == 100
    assert len(val_index) == 20 and len(set(fit_index) | set(val_index)) == 200  # 0.1 held out
    bag_of_words.cached_tfidf_reference(IMDBDataModule(data_dir=str(tiny_imdb), seed=2))
    assert len(calls) == 2  # another seed, another split


# --- The minimum-steps rule ---------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("min_steps", [0, 3])
def test_the_minimum_steps_rule_keeps_an_epoch_0_checkpoint_from_being_best(
    tmp_path, compose_cfg, min_steps
):
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    from seqmodels.training.pipeline import run_callbacks

    class ValidationRises(L.LightningModule):
        """One optimizer step per epoch; val/mse is 1 after epoch 0 and rises by 1 an epoch."""

        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            return (self.w - 1).pow(2).sum()

        def validation_step(self, batch, batch_idx):
            self.log("val/mse", float(self.current_epoch + 1))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

        def train_dataloader(self):
            return DataLoader(TensorDataset(torch.zeros(1, 1), torch.zeros(1)), batch_size=1)

        def val_dataloader(self):
            return self.train_dataloader()

    cfg = compose_cfg(f"task.min_steps_before_best={min_steps}", "task.early_stopping_patience=1")
    parts = run_callbacks(cfg, tmp_path, [])
    trainer = quiet_trainer(tmp_path, max_epochs=6, callbacks=parts.all, enable_checkpointing=True)
    trainer.fit(ValidationRises())
    best = Path(parts.best.best_model_path).name
    if min_steps == 0:  # Lightning's own rule: the lowest val/mse, after one step
        assert best == "best-000.ckpt" and trainer.current_epoch == 2  # patience 1
    else:  # no state before step 3 counts, nor stops the run: epoch 2 ends at step 3
        assert best == "best-002.ckpt" and trainer.current_epoch == 4


@pytest.mark.integration
def test_a_run_shorter_than_the_minimum_steps_tests_its_last_epoch_and_says_so(
    tmp_path, hydra_run, caplog
):
    caplog.set_level("INFO", logger="seqmodels")
    run = hydra_run(tmp_path / "run", "trainer.max_epochs=3", "seed=1")  # sine: 50 steps
    metrics = json.loads((run / "metrics.json").read_text())
    assert Path(metrics["best_checkpoint"]).name == "best-002.ckpt"
    assert metrics["epochs"] == 3
    assert "fewer than task.min_steps_before_best=50: its last epoch is its best" in caplog.text
    # the parameter count is in the run's output and its metrics.json
    assert "lstm: 1,233 trainable parameters" in caplog.text and metrics["params"] == 1233


# --- Per-example predictions and eval.py ---------------------------------------------------

RUNS = {
    "sine": ["trainer.max_epochs=3", "seed=2"],
    "memory": [
        "task=memory",
        "model=gru",
        "task.datamodule.lag=5",
        "task.datamodule.n_train=256",
        "task.datamodule.n_val=64",
        "task.datamodule.n_test=96",
        "trainer.max_epochs=2",
    ],
    "imdb": [
        "task=imdb",
        "model=gru",
        "task.datamodule.max_len=30",
        "trainer.max_epochs=2",
        "task.callbacks.by_length.edges=[10,20]",
    ],
}
COLUMNS = {
    "sine": ["example", "window_end", "target", "prediction"],
    "memory": ["example", "target", "predicted", "probability"],
    "imdb": ["example", "label", "probability", "length"],
}
EXAMPLES = {"sine": 20, "memory": 96, "imdb": 100}


def evaluate(ckpt: Path, out: Path, *overrides: str) -> dict:
    """What `python eval.py ckpt_path=CKPT OVERRIDES hydra.run.dir=OUT` does, in this process."""
    from seqmodels.training.evaluate import evaluate as run
    from seqmodels.training.evaluate import plan

    with initialize_config_dir(str(CONF), version_base="1.3"):
        evaluation = plan(str(ckpt), [f"ckpt_path={ckpt}", *overrides])
        out.mkdir(parents=True)
        return run(evaluation, out)


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file()
    }


@pytest.mark.integration
@pytest.mark.parametrize("task", ["sine", "memory", "imdb"])
def test_eval_reproduces_the_runs_test_metrics_and_predicts_every_test_example(
    tmp_path, hydra_run, task
):
    overrides = RUNS[task]
    if task == "imdb":
        data = write_parquet_dir(tmp_path / "data")
        overrides = [*overrides, f"task.datamodule.data_dir={data}"]
    run = hydra_run(tmp_path / "run", *overrides)
    before = snapshot(run)
    trained = json.loads((run / "metrics.json").read_text())
    evaluated = evaluate(run, tmp_path / "eval")
    tests = {k: v for k, v in trained.items() if k.startswith("test/")}
    assert tests and {k: evaluated[k] for k in tests} == pytest.approx(tests, abs=1e-6)
    rows = read_rows(tmp_path / "eval" / "test_predictions.csv")
    assert list(rows[0]) == COLUMNS[task] and len(rows) == EXAMPLES[task]
    assert [int(r["example"]) for r in rows] == list(range(EXAMPLES[task]))
    assert rows == read_rows(run / "test_predictions.csv")  # the run wrote the same at its end
    assert snapshot(run) == before  # the run folder is only read
    json.loads((tmp_path / "eval" / "metrics.json").read_text())  # strict JSON


@pytest.mark.integration
def test_predictions_agree_with_the_test_metrics(tmp_path, hydra_run):
    run = hydra_run(tmp_path / "run", *RUNS["sine"])
    rows = read_rows(run / "test_predictions.csv")
    metrics = json.loads((run / "metrics.json").read_text())
    errors = [(float(r["prediction"]) - float(r["target"])) ** 2 for r in rows]
    assert np.mean(errors) == pytest.approx(metrics["test/mse"], rel=1e-5)
    assert [int(r["window_end"]) for r in rows] == list(range(79, 99))  # the last 20 targets


@pytest.mark.integration
@pytest.mark.parametrize("task", ["sine", "memory", "imdb"])
def test_a_bf16_mixed_run_writes_every_prediction(tmp_path, hydra_run, task):
    """Under bf16-mixed a task's outputs can be bfloat16, which numpy can't hold."""
    overrides = [*RUNS[task], "model=gru", "trainer.precision=bf16-mixed"]
    if task == "imdb":
        overrides.append(f"task.datamodule.data_dir={write_parquet_dir(tmp_path / 'data')}")
    run = hydra_run(tmp_path / "run", *overrides)
    rows = read_rows(run / "test_predictions.csv")
    assert list(rows[0]) == COLUMNS[task] and len(rows) == EXAMPLES[task]
    assert all(np.isfinite(float(v)) for row in rows for v in row.values())


@pytest.mark.integration
def test_eval_tests_a_sine_model_on_sine_long_data(tmp_path, hydra_run):
    run = hydra_run(tmp_path / "run", *RUNS["sine"])
    evaluated = evaluate(run, tmp_path / "eval", "experiment=sine_long")
    assert evaluated["data"]["n_points"] == 10_000 and evaluated["seed"] == 2
    assert evaluated["overrides"] == ["experiment=sine_long"]
    assert len(read_rows(tmp_path / "eval" / "test_predictions.csv")) == 1998  # 20% of 9,990
    assert evaluated["test/mse_over_oracle"] > 0
    assert evaluated["data"]["batch_size"] == 128  # the experiment's data settings only


@pytest.mark.integration
def test_eval_refuses_what_would_change_the_model_or_write_into_the_run(tmp_path, hydra_run):
    from seqmodels.training.evaluate import check_out_dir, plan

    run = hydra_run(tmp_path / "run", *RUNS["sine"])
    with initialize_config_dir(str(CONF), version_base="1.3"):
        with pytest.raises(ConfigError, match="model.hidden_size=8: eval.py tests the checkpoint"):
            plan(str(run), ["model.hidden_size=8"])
        with pytest.raises(ConfigError, match="names data of task imdb; the checkpoint is a sine"):
            plan(str(run), ["task=imdb"])
        evaluation = plan(str(run), [])
        with pytest.raises(ConfigError, match="is inside the run folder"):
            check_out_dir(run / "eval", evaluation)
    with pytest.raises(
        ConfigError, match="gives window=20 but the model was trained with window=10"
    ):
        evaluate(run, tmp_path / "eval", "task.datamodule.window=20")


@pytest.mark.unit
def test_a_sweep_jobs_folder_is_quoted_for_hydras_grammar():
    from seqmodels.training.evaluate import quote_path

    assert quote_path("ckpt_path=out/4_model=lstm,seed=1") == "ckpt_path='out/4_model=lstm,seed=1'"
    assert quote_path("ckpt_path='already'") == "ckpt_path='already'"
    assert quote_path("seed=3") == "seed=3"


@pytest.mark.e2e
def test_eval_py_retests_a_run_in_a_folder_of_its_own(sine_run, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "eval"
    result = subprocess.run(
        [sys.executable, str(ROOT / "eval.py"), f"ckpt_path={sine_run}", f"hydra.run.dir={out}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_ok(result)
    trained = json.loads((sine_run / "metrics.json").read_text())
    evaluated = json.loads((out / "metrics.json").read_text())
    assert evaluated["test/mse_over_oracle"] == pytest.approx(trained["test/mse_over_oracle"])
    assert f"Evaluation folder: {out}" in result.stdout
    assert len(read_rows(out / "test_predictions.csv")) == 20
