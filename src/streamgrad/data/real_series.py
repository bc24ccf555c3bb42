"""Real univariate series shipped inside well-kept packages, as one-step-ahead streams.

The series of docs/real-series.md, chosen before any result was looked at (the choice and the
reasons are stated there). Each loader reads a file that ships inside statsmodels or river,
so nothing is downloaded:

- `co2`: weekly atmospheric CO2 at Mauna Loa, March 1958 to December 2001 (statsmodels
  `datasets.co2`, 2,284 weeks, 59 of them missing and filled by linear interpolation). The
  level is a trend plus a yearly cycle, so the stream is the weekly change (first
  difference): 2,283 values, season 52.
- `water-flow`: hourly water flow through a pipe, 1,268 hours (river `datasets.WaterFlow`),
  season 24.
- `elnino`: monthly sea-surface temperature of the Nino region, 1950 to 2010 (statsmodels
  `datasets.elnino`), 732 months, season 12.

`one_step_stream(series)` turns values v_0..v_n into the stream x_k = z_k, y_k = z_{k+1}
(k < n) with z = (v - mean(v)) / std(v). The standardisation uses the whole series: it is a
fixed change of units, the same for every method and baseline, so it favours none.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from streamgrad.data.dataset import Stream
from streamgrad.errors import UserError


@dataclass(frozen=True)
class RealSeries:
    """One real series: values (n,), its season length in steps, and where it comes from."""

    name: str
    values: np.ndarray
    season: int
    source: str


def _require(module: str, series: str) -> object:
    """Import the package that ships a series, with a one-line error when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(
            f"series {series!r} ships with the {module.split('.')[0]} package; install it with "
            "pip install 'streamgrad[series]'"
        ) from None


def _co2() -> RealSeries:
    datasets = _require("statsmodels.api", "co2").datasets  # type: ignore[attr-defined]
    level = datasets.co2.load_pandas().data["co2"].interpolate(method="linear")
    weekly_change = np.diff(level.to_numpy(np.float64))
    return RealSeries("co2", weekly_change, 52, "statsmodels.datasets.co2 (weekly change)")


def _water_flow() -> RealSeries:
    datasets = _require("river.datasets", "water-flow")
    values = np.array([y for _, y in datasets.WaterFlow()], np.float64)  # type: ignore[attr-defined]
    return RealSeries("water-flow", values, 24, "river.datasets.WaterFlow")


def _elnino() -> RealSeries:
    datasets = _require("statsmodels.api", "elnino").datasets  # type: ignore[attr-defined]
    table = datasets.elnino.load_pandas().data.sort_values("YEAR")
    months = table.drop(columns="YEAR").to_numpy(np.float64).ravel()  # year by year, Jan..Dec
    return RealSeries("elnino", months, 12, "statsmodels.datasets.elnino")


LOADERS: dict[str, Callable[[], RealSeries]] = {
    "co2": _co2,
    "water-flow": _water_flow,
    "elnino": _elnino,
}


def load_series(name: str) -> RealSeries:
    """The series called `name` (one of LOADERS), checked finite."""
    if name not in LOADERS:
        raise UserError(f"unknown series {name!r}; choose one of {', '.join(LOADERS)}")
    series = LOADERS[name]()
    if not np.isfinite(series.values).all():
        raise UserError(f"series {name!r} has missing or non-finite values")
    return series


def one_step_stream(series: RealSeries) -> Stream:
    """x_k = z_k (T, 1), y_k = z_{k+1} (T,), T = n - 1, z the standardised values."""
    values = series.values
    z = (values - values.mean()) / values.std()
    return Stream(
        z[:-1, None].copy(), z[1:].copy(), ("z",), f"{series.name}_next", source=series.source
    )


def seasonal_naive_losses(stream: Stream, season: int) -> np.ndarray:
    """Prequential squared errors (T,) of o_k = y_{k-season} (the value one season before the
    target; 0 until a full season was seen)."""
    targets = pd.Series(stream.targets)
    forecast = targets.shift(season).fillna(0.0).to_numpy()
    return (forecast - stream.targets) ** 2
