"""Writes examples/co2_monthly.csv: the monthly mean CO2 concentration at Mauna Loa (ppm), from
the weekly record 1958-2001 that ships with statsmodels (public domain; Keeling & Whorf 2004,
Carbon Dioxide Information Analysis Center). The record has no value in five months up to
April 1964; the file keeps the months after the last of them (May 1964 to December 2001), so
no value is filled in.

    python examples/make_co2_monthly.py
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pandas as pd

spec = find_spec("statsmodels")
assert spec is not None and spec.origin is not None, "pip install statsmodels"
weekly = pd.read_csv(Path(spec.origin).parent / "datasets" / "co2" / "co2.csv")
weekly["month"] = pd.to_datetime(weekly["date"].astype(str), format="%Y%m%d").dt.to_period("M")
monthly = weekly.groupby("month")["co2"].mean().round(2)  # ppm, mean of the month's weeks
months = pd.period_range(monthly.index.min(), monthly.index.max(), freq="M")
missing = months.difference(monthly.dropna().index)
monthly = monthly[monthly.index > missing.max()]  # the stretch without a gap
stretch = pd.period_range(monthly.index.min(), monthly.index.max(), freq="M")
assert monthly.notna().all() and len(monthly) == len(stretch), "a month without a value"
out = Path(__file__).with_name("co2_monthly.csv")
monthly.rename_axis("month").reset_index().astype({"month": str}).to_csv(out, index=False)
print(f"{out}: {len(monthly)} months, {monthly.min()} to {monthly.max()} ppm")
