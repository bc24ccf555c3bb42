"""Gradient alignment of the approximate online algorithms on the Add task.

Each approximation (UORO, SnAp-1, SnAp-2, RFLO, TBPTT(1)) trains online on the same Add-task stream
from the same initial parameters, with an exact RTRL shadow beside it (`shadowed`); the table
reports the mean cosine and relative error of its cell gradient against the exact one, and its
own prequential loss over the last 10%. Exact RTRL itself is the reference row (cosine 1).
With `density` < 1 the Elman recurrence is sparse, the setting where SnAp-2 is not exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import pandas as pd

from streamgrad.data.synthetic import add_task
from streamgrad.gradients import alignment_summary, make_algorithm, rtrl, shadowed
from streamgrad.model import make_model
from streamgrad.online import OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule
from streamgrad.reporting import Column, plot_losses, render_table, versions, write_json

METHODS = ("rtrl", "snap1", "snap2", "rflo", "uoro", "tbptt:1")


def run(
    out: Path,
    *,
    steps: int = 50_000,
    lags: tuple[int, int] = (5, 9),
    hidden: int = 32,
    cell: str = "elman",
    lr: float = 0.01,
    density: float = 1.0,
    methods: tuple[str, ...] = METHODS,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    stream = add_task(steps, lags=lags, seed=seed)
    options = {"density": density} if density < 1.0 else {}
    model = make_model(cell, hidden, stream.input_dim, **options)
    optimizer = make_optimizer("sgd", make_schedule("constant", lr))
    rows, histories = [], {}
    for method in methods:
        learner = OnlineLearner(shadowed(make_algorithm(method, model), rtrl(model)), optimizer)
        state = learner.init(model.init(jax.random.PRNGKey(seed)))
        state, history = learner.fit(
            state,
            stream.inputs,
            stream.targets,
            chunk_size=min(10_000, steps),
            progress=progress,
            description=method,
        )
        tail = max(1, steps // 10)
        rows.append(
            {
                "method": method,
                **alignment_summary(state.algo_state),
                "loss_last_10pct": float(history.losses[-tail:].mean()),
                "steps_per_second_with_shadow": history.steps_per_second,
            }
        )
        histories[method] = history
    table = pd.DataFrame(rows)
    table.to_csv(out / "table.csv", index=False)
    plot_losses(
        out / "loss.png",
        histories,
        title=f"Add task {lags}: approximate online gradients (sgd lr={lr:g}, density {density:g})",
    )
    summary = {
        "experiment": "alignment",
        "steps": steps,
        "lags": list(lags),
        "cell": cell,
        "hidden": hidden,
        "lr": lr,
        "density": density,
        "seed": seed,
        "results": rows,
        "versions": versions(),
    }
    write_json(out / "summary.json", summary)
    return summary


def table_text(summary: dict[str, Any]) -> str:
    """Alignment with the exact gradient and the loss, one line per method."""
    columns = [
        Column("method", align="left"),
        Column("cosine", spec=".3f"),
        Column("relative_error", "rel.error", ".3f"),
        Column("loss_last_10pct", "loss (last 10%)", ".5f"),
    ]
    return render_table(summary["results"], columns)
