"""Your own univariate time series: one numeric column of a CSV or parquet file, forecast one
step ahead from windows of its past values. By default the yearly sunspot numbers 1700-2008
that ship inside statsmodels (`statsmodels/datasets/sunspots/sunspots.csv`, from NOAA's
National Geophysical Data Center; public domain), so nothing is downloaded at run time."""

from __future__ import annotations

from functools import cached_property
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pandas as pd

from seqmodels.data.windows import WindowDataModule, check_trainable
from seqmodels.errors import ConfigError

SUFFIXES = (".csv", ".parquet")


def sunspots_csv() -> Path:
    """The yearly sunspot numbers in the installed statsmodels (columns YEAR, SUNACTIVITY)."""
    spec = find_spec("statsmodels")  # found without importing statsmodels
    if spec is None or spec.origin is None:
        raise ConfigError(
            "task.datamodule.path=null reads the sunspot numbers that ship with statsmodels, "
            "which is not installed; pip install statsmodels, or give task.datamodule.path"
        )
    return Path(spec.origin).parent / "datasets" / "sunspots" / "sunspots.csv"


def read_series(path: str | Path, column: str | None) -> np.ndarray:
    """The values of `column` in a CSV or parquet file, in file order, as float32 `(N,)`.

    Raises ConfigError, in one line naming the setting, for a missing file, another format,
    a missing column, and a column with non-numeric or missing values.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise ConfigError(
            f"task.datamodule.path={path} does not exist{where}; give a .csv or .parquet file "
            "(or path=null for the sunspot numbers); a resumed run may be given where its data "
            "is now"
        )
    if path.suffix.lower() not in SUFFIXES:
        raise ConfigError(
            f"task.datamodule.path={path} is not a .csv or .parquet file; save the series as one"
        )
    try:
        table = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except Exception as err:  # any reader failure becomes one line naming the file
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"task.datamodule.path={path} could not be read: {first}") from None
    columns = [str(c) for c in table.columns]
    if column is None or str(column) not in columns:
        raise ConfigError(
            f"task.datamodule.column={column} is not a column of {path}; "
            f"choose one of {', '.join(columns)}"
        )
    raw = table[table.columns[columns.index(str(column))]]
    missing = np.flatnonzero(raw.isna().to_numpy())
    if len(missing):
        raise ConfigError(
            f"task.datamodule.column={column} of {path} has {len(missing)} missing values "
            f"(first at row {missing[0]}); fill or drop them before training"
        )
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = np.flatnonzero(numbers.isna().to_numpy())
    if len(bad) or raw.dtype == bool:
        row = bad[0] if len(bad) else 0
        raise ConfigError(
            f"task.datamodule.column={column} of {path} is not numeric (row {row}: "
            f"{raw.iloc[row]!r}); choose a column of numbers"
        )
    values = numbers.to_numpy(dtype=np.float64)
    check_trainable(values, f"task.datamodule.column={column} of {path}")
    return values.astype(np.float32)


class SeriesDataModule(WindowDataModule):
    """One column of a CSV or parquet file (rows in time order), in windows of `window` values
    that predict the next; the last `test_size` windows test, the `val_size` before them
    validate, the rest train (counts, or fractions of all windows). The model scales its
    inputs by the training part alone (`model_kwargs`).
    """

    def __init__(
        self,
        path: str | None = None,
        column: str | None = None,
        window: int = 20,
        val_size: int | float = 0.15,
        test_size: int | float = 0.15,
        batch_size: int = 32,
        seed: int = 0,
    ) -> None:
        super().__init__(window, val_size, test_size, batch_size, seed)
        if path is None and column is None:
            column = "SUNACTIVITY"
        self.save_hyperparameters()
        self.path = Path(path) if path is not None else sunspots_csv()
        self.column = column
        self.n_train = self.sizes["train"]  # reads and checks the series now, before training

    @cached_property
    def values(self) -> np.ndarray:
        return read_series(self.path, self.column)
