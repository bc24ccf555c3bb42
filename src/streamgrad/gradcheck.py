"""Gradient check: every exact online algorithm against BPTT, for every cell and coupling.

With parameters frozen, the sum of the gradients an exact algorithm emits along a stream must
equal dL/dtheta of L = sum_k l_k computed by reverse mode through the whole sequence (BPTT).
Runs in float64 so that the only differences are rounding.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from streamgrad.gradients import accumulate_gradient, bptt_gradient, make_algorithm
from streamgrad.model import make_model
from streamgrad.reporting import Column, render_table

CASES: tuple[tuple[str, dict[str, str]], ...] = (
    ("elman", {}),
    ("gru", {}),
    ("diagonal", {}),
    ("meanfield", {"coupling": "shared"}),
    ("meanfield", {"coupling": "diagonal"}),
    ("meanfield", {"coupling": "dense"}),
)


def run_gradcheck(
    *, steps: int = 50, hidden: int = 6, input_dim: int = 3, seed: int = 0
) -> list[dict[str, object]]:
    """One row per (cell, coupling, algorithm, task): max |g - g_bptt| / max |g_bptt|."""
    jax.config.update("jax_enable_x64", True)
    rows: list[dict[str, object]] = []
    key_x, key_y, key_p = jax.random.split(jax.random.PRNGKey(seed), 3)
    inputs = jax.random.normal(key_x, (steps, input_dim), jnp.float64)
    for cell, options in CASES:
        for n_classes in (None, 3):
            model = make_model(cell, hidden, input_dim, n_classes=n_classes, **options)
            params = model.init(key_p, jnp.float64)
            targets = (
                jax.random.normal(key_y, (steps,), jnp.float64)
                if n_classes is None
                else jax.random.randint(key_y, (steps,), 0, n_classes)
            )
            reference, _ = bptt_gradient(model, params, inputs, targets)
            flat_reference = ravel_pytree(reference)[0]
            specs = ["rtrl", f"tbptt:{steps}"]
            if model.cell.structure != "dense":
                specs.insert(1, "rtrl:dense")
            for spec in specs:
                algorithm = make_algorithm(spec, model)
                grads, _ = jax.jit(
                    lambda p, a=algorithm, t=targets: accumulate_gradient(a, p, inputs, t)
                )(params)
                error = jnp.max(jnp.abs(ravel_pytree(grads)[0] - flat_reference)) / jnp.max(
                    jnp.abs(flat_reference)
                )
                rows.append(
                    {
                        "cell": cell,
                        "coupling": options.get("coupling", ""),
                        "task": "regression" if n_classes is None else "classification",
                        "algorithm": algorithm.name,
                        "max_relative_error": float(error),
                    }
                )
    return rows


def table_text(rows: list[dict[str, object]], steps: int) -> str:
    """The rows of `run_gradcheck` as a table."""
    columns = [Column(key, align="left") for key in ("cell", "coupling", "task", "algorithm")]
    columns.append(Column("max_relative_error", "max relative error", ".2e"))
    title = f"RTRL/TBPTT vs BPTT, float64, {steps} steps, parameters frozen"
    return render_table(rows, columns, title=title)
