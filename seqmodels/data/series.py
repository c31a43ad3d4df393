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
# Column names read as a file's time axis when `time_column` is not given (case aside).
TIME_NAMES = ("date", "datetime", "time", "timestamp", "year", "month", "week", "day", "ds")


def sunspots_csv() -> Path:
    """The yearly sunspot numbers in the installed statsmodels (columns YEAR, SUNACTIVITY)."""
    spec = find_spec("statsmodels")  # found without importing statsmodels
    if spec is None or spec.origin is None:
        raise ConfigError(
            "task.datamodule.path=null reads the sunspot numbers that ship with statsmodels, "
            "which is not installed; pip install statsmodels, or give task.datamodule.path"
        )
    return Path(spec.origin).parent / "datasets" / "sunspots" / "sunspots.csv"


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV or parquet file as a table; ConfigError naming `task.datamodule.path` for a missing
    file, another format, or one that can't be read."""
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
    return table


def read_series(path: str | Path, column: str | None) -> np.ndarray:
    """The values of `column` in a CSV or parquet file, in file order, as float32 `(N,)`.

    Raises ConfigError, in one line naming the setting, for a missing file, another format,
    a missing column, and a column with non-numeric or missing values.
    """
    path = Path(path).expanduser()
    table = read_table(path)
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


def read_times(
    path: str | Path, column: str | None, time_column: str | None
) -> tuple[np.ndarray, str] | None:
    """The file's time axis, `(N,)` numbers (whole ones as integers, e.g. years) or dates, and
    its column's name: `time_column`, or when None the first other column named like a time
    (`TIME_NAMES`, e.g. YEAR, date) whose values read as numbers or dates; None when there is
    none. ConfigError naming `task.datamodule.time_column` for a given column that is missing
    or holds neither numbers nor dates."""
    table = read_table(path)
    columns = [str(c) for c in table.columns]
    if time_column is not None and str(time_column) not in columns:
        raise ConfigError(
            f"task.datamodule.time_column={time_column} is not a column of {path}; choose one "
            f"of {', '.join(columns)}, or null (a column named like a date or year, else steps)"
        )
    candidates = (
        [str(time_column)]
        if time_column is not None
        else [c for c in columns if c != str(column) and c.lower() in TIME_NAMES]
    )
    for name in candidates:
        times = _as_times(table[table.columns[columns.index(name)]])
        if times is not None:
            return times, name
        if time_column is not None:
            raise ConfigError(
                f"task.datamodule.time_column={time_column} of {path} holds neither numbers nor "
                "dates; choose another column, or null"
            )
    return None


def _as_times(raw: pd.Series) -> np.ndarray | None:
    """A column as times: numbers (whole ones as int64) or datetime64; None if neither."""
    if raw.isna().any():
        return None
    if pd.api.types.is_numeric_dtype(raw) and raw.dtype != bool:
        values = raw.to_numpy(dtype=np.float64)
        return values.astype(np.int64) if np.all(values == np.round(values)) else values
    try:
        return pd.to_datetime(raw.astype(str), format="mixed").to_numpy()
    except (ValueError, TypeError):
        return None


class SeriesDataModule(WindowDataModule):
    """One column of a CSV or parquet file (rows in time order), in windows of `window` values
    that predict the next; the last `test_size` windows test, the `val_size` before them
    validate, the rest train (counts, or fractions of all windows). The model scales its
    inputs by the training part alone (`model_kwargs`). Figures draw the series against the
    file's own time axis (`time_column`, or a column named like a date or a year: `read_times`)
    and name its values by `column`.
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
        time_column: str | None = None,
    ) -> None:
        super().__init__(window, val_size, test_size, batch_size, seed)
        if path is None and column is None:
            column = "SUNACTIVITY"
        self.save_hyperparameters()
        self.path = Path(path) if path is not None else sunspots_csv()
        self.column = column
        self.time_column = time_column
        self.n_train = self.sizes["train"]  # reads and checks the series now, before training
        if time_column is not None:
            self.times  # noqa: B018 (a bad time column is refused now, before training)

    @cached_property
    def values(self) -> np.ndarray:
        return read_series(self.path, self.column)

    @cached_property
    def times(self) -> tuple[np.ndarray, str] | None:
        """The file's time axis and its column name (`read_times`), or None: steps."""
        return read_times(self.path, self.column, self.time_column)

    @property
    def time_label(self) -> str:  # type: ignore[override]
        return self.times[1] if self.times else "time step"

    @property
    def value_label(self) -> str:  # type: ignore[override]
        return str(self.column)

    def target_times(self, name: str) -> np.ndarray:
        steps = self.target_steps(name)
        return self.times[0][steps] if self.times else steps
