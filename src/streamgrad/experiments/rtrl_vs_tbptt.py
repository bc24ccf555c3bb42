"""RTRL against TBPTT on the Add task, online.

Stream: x_k ~ Bernoulli(1/2), y_k = 0.5 + 0.5 x_{k-t1} - 0.25 x_{k-t2} (lags t1 < t2).
Predicting the mean gives loss Var(y) = 0.078125; learning only the lag t1 leaves
0.25^2/4 = 0.015625; learning both lags drives the loss to 0. TBPTT with tau below a lag cannot
see that dependency through its gradient; RTRL follows the full gradient online.

The table also fits each method's predictions over the last 10% on (1, x_{k-t1}, x_{k-t2}):
the two coefficients say how much of each lag was learned (truth: 0.5 and -0.25).

Methods are compared at equal update frequency (`lr_choice.equal_frequency`): RTRL (an
update every step) beside TBPTT(1, tau), and RTRL(every tau) (the sum of tau exact gradients)
beside TBPTT(tau, tau), for tau below the first lag, between the lags and above both. Every
method runs on the same stream from the same initial parameters with its learning rate chosen
the same way, online: the learning-rate ensemble (`ensemble.LrEnsemble`) over a small grid
predicts with the rate whose running prequential loss is lowest. The table names the rate
chosen most often.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd

from streamgrad.data.dataset import Stream
from streamgrad.data.synthetic import add_task
from streamgrad.ensemble import LrEnsemble
from streamgrad.errors import DivergenceError
from streamgrad.experiments.lr_choice import (
    ensemble_choice,
    equal_frequency,
    unit_rate_learner,
)
from streamgrad.model import Model, make_model
from streamgrad.online import History
from streamgrad.reporting import (
    Column,
    chunk_table,
    plot_losses,
    render_table,
    versions,
    write_json,
)

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


def default_windows(lags: tuple[int, int]) -> tuple[int, ...]:
    """tau below the first lag, between the lags, and above both."""
    t1, t2 = lags
    return tuple(sorted({max(1, t1 - 2), (t1 + t2) // 2 if t2 - t1 > 1 else t1, t2 + 5}))


def run(
    out: Path,
    *,
    steps: int = 200_000,
    lags: tuple[int, int] = (5, 9),
    hidden: int = 32,
    cell: str = "elman",
    windows: tuple[int, ...] | None = None,
    learning_rates: tuple[float, ...] = (0.01, 0.03, 0.1),
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Every method of `equal_frequency(windows)` on one Add-task stream, its rate chosen by
    the ensemble over `learning_rates` (SGD); writes table.csv, metrics.csv, comparison.png
    and summary.json into `out`."""
    stream = add_task(steps, lags=lags, seed=seed)
    model = make_model(cell, hidden, stream.input_dim)
    rows, histories = [], {}
    for interval, method in equal_frequency(windows or default_windows(lags)):
        row, history = _run_method(method, model, learning_rates, stream, lags, seed, progress)
        rows.append({"method": method, "updates_every": interval, **row})
        if history is not None:
            histories[f"{method} (every {interval})"] = history
    table = pd.DataFrame(rows)
    table.to_csv(out / "table.csv", index=False)
    chunk_table(histories).to_csv(out / "metrics.csv", index=False)
    plot_losses(
        out / "comparison.png",
        histories,
        title=f"Add task, lags {lags}: online prequential loss at equal update frequency",
    )
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
        "learning_rates": {
            "grid": list(learning_rates),
            "choice": "online ensemble (lowest running prequential loss, ensemble.py)",
        },
        "methods": rows,
        "versions": versions(),
    }
    write_json(out / "summary.json", summary)
    return summary


def _run_method(
    method: str,
    model: Model,
    learning_rates: tuple[float, ...],
    stream: Stream,
    lags: tuple[int, int],
    seed: int,
    progress: bool,
) -> tuple[dict[str, Any], History | None]:
    """One method as the ensemble over `learning_rates`: its scores and chosen rates and its
    history, or where it diverged (and None)."""
    ensemble = LrEnsemble(unit_rate_learner(model, method, "sgd"), learning_rates)
    state = ensemble.init(model.init(jax.random.PRNGKey(seed)))
    try:
        state, history = ensemble.fit(
            state,
            stream.inputs,
            stream.targets,
            chunk_size=min(20_000, len(stream)),
            progress=progress,
            description=method,
        )
    except DivergenceError as error:
        return {"diverged_at": error.step}, None
    return {**_scores(history, stream, lags), **ensemble_choice(ensemble.lrs, state)}, history


def _scores(history: History, stream: Stream, lags: tuple[int, int]) -> dict[str, float]:
    """Loss over the whole stream and its last 10%, the lag coefficients of the last 10%
    (at least t2 + 1 steps), steps per second."""
    steps = len(stream)
    tail = slice(steps - max(lags[1] + 1, steps // 10), steps)
    lag1, lag2 = lag_coefficients(history.outputs[tail, 0], stream.inputs[tail, 0], lags)
    return {
        "loss_overall": float(history.losses.mean()),
        "loss": float(history.losses[-max(1, steps // 10) :].mean()),
        f"lag_{lags[0]}": lag1,
        f"lag_{lags[1]}": lag2,
        "steps_per_second": history.steps_per_second,
    }


def table_text(summary: dict[str, Any]) -> str:
    """The best run per method as a small plain-text table, below the true coefficients."""
    t1, t2 = summary["task"]["lags"]
    columns = [
        Column("method", align="left"),
        Column("updates_every", "update every"),
        Column("chosen_most", "lr (chosen most)", "g"),
        Column("loss", "loss (last 10%)", ".5f"),
        Column(f"lag_{t1}", f"coef lag {t1}", ".3f"),
        Column(f"lag_{t2}", f"coef lag {t2}", ".3f"),
        Column("steps_per_second", "steps/s", ".0f"),
    ]
    truth = {"method": "(truth)", "loss": 0.0, f"lag_{t1}": 0.5, f"lag_{t2}": -0.25}
    return render_table([truth, *summary["methods"]], columns)
