"""notebooks/tutorial.ipynb, executed as a reader runs it: every cell, in a fresh kernel, in an
empty folder, without the IMDB data (its synthetic reviews then)."""

from __future__ import annotations

import json
import os

import pytest

from .helpers import ROOT

NOTEBOOK = ROOT / "notebooks" / "tutorial.ipynb"


@pytest.mark.e2e
def test_the_tutorial_notebook_runs_top_to_bottom_and_shows_what_it_says(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.delenv("IMDB_DIR", raising=False)
    # the kernel imports this checkout's seqmodels, as the tests do
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error

    printed = "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    images = sum(
        "image/png" in output.get("data", {})
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    assert images >= 5  # the curves, predictions, the multi-step forecast, gradients, gates
    runs = tmp_path / "tutorial_runs"
    assert (runs / "imdb_lstm" / "curves.png").is_file()
    memory = {
        json.loads(p.read_text())["model"]: json.loads(p.read_text())
        for p in (runs / "memory").glob("*/metrics.json")
    }
    # what the notebook's memory section shows: the SimpleRNN at chance, the LSTM far above it
    assert memory["rnn"]["test/acc"] < 0.3 and memory["lstm"]["test/acc"] > 0.9
    assert "lstm: test/acc" in printed and "hidden states: {'layer0.forward'" in printed
