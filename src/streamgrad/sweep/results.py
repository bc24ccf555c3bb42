"""A sweep's results gathered: one row per run (its overrides and the numbers of its summary),
aggregates over seeds, and a plot of one metric against the swept axes."""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streamgrad.errors import UserError
from streamgrad.reporting import save_figure, write_json
from streamgrad.sweep.spec import SEED_AXIS, Run

# Top-level summary entries that describe the run's settings and provenance, not its results.
SETTINGS = frozenset({"config", "versions", "data", "model"})
# Columns every results table starts with.
RUN_COLUMNS = ["id", "status", "error"]


def flatten(summary: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a summary as dotted columns: {"overall": {"loss": x}} -> "overall.loss".
    Lists of rows with a "method" (lob's results table) become "results.<method>.<column>";
    strings, flags and other lists are left out."""
    columns: dict[str, float] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if (not prefix and key in SETTINGS) or isinstance(value, bool | np.bool_):
            continue
        if isinstance(value, numbers.Real):
            columns[name] = value  # type: ignore[assignment]
        elif isinstance(value, Mapping):
            columns.update(flatten(value, f"{name}."))
        elif isinstance(value, list) and value and all(_method_row(row) for row in value):
            for row in value:
                rest = {k: v for k, v in row.items() if k != "method"}
                columns.update(flatten(rest, f"{name}.{row['method']}."))
    return columns


def _method_row(row: Any) -> bool:
    return isinstance(row, Mapping) and isinstance(row.get("method"), str)


def results_table(
    runs: Sequence[Run], records: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any]
) -> pd.DataFrame:
    """One row per run in spec order: id, status (done | failed | pending), error, the value
    of every swept option (the `base` one where a run does not override it), then the
    summary's numbers."""
    axes = list(dict.fromkeys(key for run in runs for key in run.overrides))
    rows = []
    for run in runs:
        record = records.get(run.id) or {"status": "pending"}
        rows.append(
            {
                "id": run.id,
                "status": record["status"],
                "error": record.get("error"),
                **{axis: base.get(axis) for axis in axes},
                **run.overrides,
                **{k: v for k, v in flatten(record.get("summary") or {}).items() if k not in axes},
            }
        )
    table = pd.DataFrame(rows)
    for column in table.columns.difference(RUN_COLUMNS):
        kinds = {type(v) for v in table[column].dropna()}
        if table[column].dtype == object and len(kinds) > 1:  # e.g. lr = [1, "0.1"]: one type
            table[column] = table[column].map(lambda v: v if v is None else str(v))
    return table


def aggregate(table: pd.DataFrame, axes: Sequence[str], metric: str) -> list[dict[str, Any]]:
    """`metric` over the seeds of every combination of the other axes: runs, mean, std
    (ddof 1; None for one run), min, max. Failed runs are left out."""
    if metric not in table:
        return []
    done = table[(table.status == "done") & table[metric].notna()]
    others = [axis for axis in axes if axis != SEED_AXIS]
    groups = done.groupby(others, sort=False, dropna=False) if others else [((), done)]
    rows = []
    for key, group in groups:
        values = group[metric].to_numpy(np.float64)
        labels = dict(zip(others, _tuple(key), strict=True))
        rows.append(
            {
                **labels,
                "runs": len(values),
                "mean": float(values.mean()),
                "std": float(values.std(ddof=1)) if len(values) > 1 else None,
                "min": float(values.min()),
                "max": float(values.max()),
            }
        )
    return rows


def write_results(
    out: Path, table: pd.DataFrame, spec: Mapping[str, Any], axes: Sequence[str], metric: str
) -> dict[str, Any]:
    """results.parquet, results.csv and summary.json in `out`; returns the summary."""
    table.to_parquet(out / "results.parquet", index=False)
    table.to_csv(out / "results.csv", index=False)
    counts = table.status.value_counts()
    summary = {
        "spec": dict(spec),
        "runs": len(table),
        "done": int(counts.get("done", 0)),
        "failed": int(counts.get("failed", 0)),
        "failures": table[table.status == "failed"][["id", "error"]].to_dict(orient="records"),
        "metric": metric,
        "over_seeds": aggregate(table, axes, metric),
    }
    write_json(out / "summary.json", summary)
    return summary


def plot_metric(path: Path, table: pd.DataFrame, axes: Sequence[str], metric: str) -> None:
    """`metric` against the first numeric swept axis (else the first swept axis, as
    categories), one line per combination of the other axes; mean over seeds with a min-max
    band."""
    import matplotlib.pyplot as plt

    done = table[table.status == "done"]
    if metric not in table or done[metric].isna().all():
        shown = ", ".join(c for c in table.columns if c not in RUN_COLUMNS and c not in axes)
        raise UserError(f"--metric {metric!r}: no run has it; the results have {shown}")
    others = [axis for axis in axes if axis != SEED_AXIS]
    numeric = [a for a in others if pd.api.types.is_numeric_dtype(table[a].dropna())]
    x = (numeric or others or [None])[0]
    lines = [axis for axis in others if axis != x]
    positions = _positions(table[x]) if x else None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    groups = done.groupby(lines, sort=False, dropna=False) if lines else [((), done)]
    for key, group in groups:
        label = ", ".join(f"{a}={v}" for a, v in zip(lines, _tuple(key), strict=True))
        if x:
            stats = group.groupby(x, sort=False)[metric].agg(["mean", "min", "max"])
            stats.index = [positions[value] for value in stats.index]
        else:
            stats = pd.DataFrame([group[metric].agg(["mean", "min", "max"])], index=[0.0])
        stats = stats.sort_index()
        ax.plot(stats.index, stats["mean"], marker="o", lw=1.2, label=label or metric)
        if SEED_AXIS in axes:
            ax.fill_between(stats.index, stats["min"], stats["max"], alpha=0.2)
    if x and x in numeric:
        values = table[x].dropna().to_numpy(np.float64)
        if values.min() > 0 and values.max() / values.min() >= 100:
            ax.set_xscale("log")
    elif x:
        ax.set_xticks(list(positions.values()), [str(v) for v in positions])
    ax.set_xlabel(x or "")
    ax.set_ylabel(metric)
    band = f", mean and min-max over {SEED_AXIS}s" if SEED_AXIS in axes else ""
    ax.set_title(f"{metric}{band}")
    ax.grid(alpha=0.3)
    if lines:
        ax.legend()
    save_figure(fig, path, dpi=120)


def _positions(values: pd.Series) -> dict[Any, float]:
    """Where each value of the x axis goes: itself if numeric, else its rank of appearance."""
    distinct = list(dict.fromkeys(values.dropna()))
    if pd.api.types.is_numeric_dtype(values.dropna()):
        return {v: float(v) for v in distinct}
    return {v: float(i) for i, v in enumerate(distinct)}


def _tuple(key: Any) -> tuple:
    return key if isinstance(key, tuple) else (key,)
