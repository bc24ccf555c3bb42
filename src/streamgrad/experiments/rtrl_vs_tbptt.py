"""RTRL against TBPTT on the Add task, online.

Stream: x_k ~ Bernoulli(1/2), y_k = 0.5 + 0.5 x_{k-t1} - 0.25 x_{k-t2} (lags t1 < t2).
Predicting the mean gives loss Var(y) = 0.078125; learning only the lag t1 leaves
0.25^2/4 = 0.015625; learning both lags drives the loss to 0. TBPTT with tau below a lag cannot
see that dependency through its gradient; RTRL follows the full gradient online.

The table also fits each method's predictions over the last 10% on (1, x_{k-t1}, x_{k-t2}):
the two coefficients say how much of each lag was learned (truth: 0.5 and -0.25).

Every method runs on the same stream from the same initial parameters, for each learning rate of
a small grid (TBPTT sums tau losses per update, so its best rate differs); the table reports
every run and marks the best rate per method by the loss over the last 10% of the stream.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streamgrad.config import TrainConfig
from streamgrad.data.dataset import Stream
from streamgrad.data.synthetic import add_task
from streamgrad.errors import DivergenceError
from streamgrad.reporting import (
    Column,
    chunk_table,
    plot_losses,
    render_table,
    versions,
    write_json,
)
from streamgrad.training import RunResult, train_on_stream

MEAN_ONLY_LOSS = 0.078125
FIRST_LAG_ONLY_LOSS = 0.015625


def lag_coefficients(
    predictions: np.ndarray, inputs: np.ndarray, lags: tuple[int, int]
) -> tuple[float, float]:
    """Least-squares fit of the predictions on (1, x_{k-t1}, x_{k-t2}): how much of each lag
    the network has learned (the truth is 0.5 and -0.25). predictions (T,), inputs (T,)."""
    t1, t2 = lags
    design = np.column_stack([np.ones(len(inputs) - t2), inputs[t2 - t1 : -t1], inputs[:-t2]])
    coefficients, *_ = np.linalg.lstsq(design, predictions[t2:], rcond=None)
    return float(coefficients[1]), float(coefficients[2])


def default_methods(lags: tuple[int, int]) -> list[str]:
    """RTRL, and TBPTT with tau below the first lag, between the lags, and above both."""
    t1, t2 = lags
    taus = sorted({max(1, t1 - 2), (t1 + t2) // 2 if t2 - t1 > 1 else t1, t2 + 5})
    return ["rtrl", *(f"tbptt:{tau}" for tau in taus)]


def run(
    out: Path,
    *,
    steps: int = 200_000,
    lags: tuple[int, int] = (5, 9),
    hidden: int = 32,
    cell: str = "elman",
    methods: list[str] | None = None,
    learning_rates: tuple[float, ...] = (0.01, 0.03, 0.1),
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Every method at every learning rate on one Add-task stream; writes table.csv,
    metrics.csv (best rate per method), comparison.png and summary.json into `out`."""
    stream = add_task(steps, lags=lags, seed=seed)
    rows, best_runs = [], {}
    for method in methods or default_methods(lags):
        for lr in learning_rates:
            config = TrainConfig(
                cell=cell,
                hidden=hidden,
                algo=method,
                optimizer="sgd",
                lr=lr,
                seed=seed,
                chunk=min(20_000, steps),
            )
            row, result = _one_run(config, stream, lags, progress)
            rows.append(row)
            best = best_runs.get(method)
            if result is not None and (best is None or _tail_loss(result) < _tail_loss(best)):
                best_runs[method] = result
    _write_outputs(out, rows, best_runs, lags)
    summary = {
        "experiment": "rtrl-vs-tbptt",
        "task": {
            "name": "add",
            "lags": list(lags),
            "steps": steps,
            "seed": seed,
            "mean_only_loss": MEAN_ONLY_LOSS,
            "first_lag_only_loss": FIRST_LAG_ONLY_LOSS,
        },
        "model": {"cell": cell, "hidden": hidden, "optimizer": "sgd"},
        "best": {
            m: {
                "lr": r.config.lr,
                **r.summary["last_10_percent"],
                **r.summary["lag_coefficients"],
                "steps_per_second": r.summary["steps_per_second"],
            }
            for m, r in best_runs.items()
        },
        "runs": rows,
        "versions": versions(),
    }
    write_json(out / "summary.json", summary)
    return summary


def _tail_loss(result: RunResult) -> float:
    return result.summary["last_10_percent"]["loss"]


def _one_run(
    config: TrainConfig, stream: Stream, lags: tuple[int, int], progress: bool
) -> tuple[dict[str, Any], RunResult | None]:
    """One method at one learning rate: its table row, and its result (None if it diverged);
    the result's summary gains the lag coefficients of the last 10%."""
    method, lr, steps = config.algo, config.lr, len(stream)
    try:
        result = train_on_stream(config, stream, label=f"{method} lr={lr:g}", progress=progress)
    except DivergenceError as error:
        return {"method": method, "lr": lr, "diverged_at": error.step}, None
    s = result.summary
    tail = slice(steps - max(lags[1] + 1, steps // 10), steps)
    lag1, lag2 = lag_coefficients(result.history.outputs[tail, 0], stream.inputs[tail, 0], lags)
    s["lag_coefficients"] = {f"lag_{lags[0]}": lag1, f"lag_{lags[1]}": lag2}
    row = {
        "method": method,
        "lr": lr,
        "loss_overall": s["overall"]["loss"],
        "loss_last_10pct": s["last_10_percent"]["loss"],
        f"coef_lag_{lags[0]}": lag1,
        f"coef_lag_{lags[1]}": lag2,
        "steps_per_second": s["steps_per_second"],
        "diverged_at": None,
    }
    return row, result


def _write_outputs(
    out: Path, rows: list[dict[str, Any]], best_runs: dict[str, RunResult], lags: tuple[int, int]
) -> None:
    """table.csv (every run, the best rate per method marked), metrics.csv and the plot."""
    table = pd.DataFrame(rows)
    table["best"] = [
        method in best_runs and best_runs[method].config.lr == lr
        for method, lr in zip(table["method"], table["lr"], strict=True)
    ]
    table.to_csv(out / "table.csv", index=False)
    chunk_table({m: r.history for m, r in best_runs.items()}).to_csv(
        out / "metrics.csv", index=False
    )
    plot_losses(
        out / "comparison.png",
        {f"{m} (lr={r.config.lr:g})": r.history for m, r in best_runs.items()},
        title=f"Add task, lags {lags}: online prequential loss (best lr per method)",
    )


def table_text(summary: dict[str, Any]) -> str:
    """The best run per method as a small plain-text table, below the true coefficients."""
    t1, t2 = summary["task"]["lags"]
    columns = [
        Column("method", align="left"),
        Column("lr", spec="g"),
        Column("loss", "loss (last 10%)", ".5f"),
        Column(f"lag_{t1}", f"coef lag {t1}", ".3f"),
        Column(f"lag_{t2}", f"coef lag {t2}", ".3f"),
        Column("steps_per_second", "steps/s", ".0f"),
    ]
    truth = {"method": "(truth)", "loss": 0.0, f"lag_{t1}": 0.5, f"lag_{t2}": -0.25}
    best = [{"method": method, **row} for method, row in summary["best"].items()]
    return render_table([truth, *best], columns)
