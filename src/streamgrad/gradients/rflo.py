"""RFLO, random-feedback local online learning (Murray 2019), adapted to these cells.

Murray's leaky network h_{k+1} = (1 - a) h_k + a phi(W h_k + W_in x_k), a = 1/tau, keeps one
eligibility trace per weight that forgets at the leak rate and ignores every path through
the recurrent weights, the unit's own self-connection included:

    p_ij(k+1) = (1 - a) p_ij(k) + a phi'(u_i) h_j(k),      dW_ij = (B e_k)_i p_ij(k+1),

with e_k the output error and B a fixed random matrix in place of the readout's transpose.
Our cells have no leak (a = 1, h_{k+1} = phi(u_k)), and there phi'(u_i) h_j(k) is the immediate
term I_k[i, (i, j)] of a row-local leaf. The variant here takes the retention as a constant
`decay` in [0, 1] and keeps, for each row-local leaf (the per-unit traces of traces.py),

    E_{k+1}[i, q]   = decay E_k[i, q] + I_k[i, (i, q)],
    dl_k/dpsi[i, q] = g_k[i] E_{k+1}[i, q],    dl_k/dtheta = (dpsi/dtheta)^T dl_k/dpsi.

decay = 0 (the default) is exactly Murray's trace with a = 1, the faithful setting for the
leak-free cells here: the one-step truncation, the gradient through the last step only.
decay = 1 - a in (0, 1) is NOT Murray's trace with leak a = 1/tau: the new term enters without
Murray's factor a, so E = p / a and the gradient of every traced leaf (for Elman the
recurrent A, the input W and the bias b) is 1/(1 - decay) = tau times Murray's, in the same
direction. This is kept as it is (under plain SGD a learning rate times 1 - decay gives
Murray's update). Leaves that are not row-local are immediate-only, dl_k/dpsi = g_k^T I_k
(as in SnAp-1). SnAp-1 is the same recursion with retention diag(D_k) instead of a constant.

The error signal g_k (`feedback`):
* "readout" (default): the true delta_k = dl_k/dS_{k+1};
* "random": g_k = B dl_k/do_k with B (N x K) fixed at `init`, entries N(0, 1/N) (the scale
  of the linear readout's V^T at initialisation), drawn from `seed`.
The readout's own gradient is always exact.

Per step: O(P) time (one forward pass and two vjps) and O(P) memory (one trace per
row-local weight, plus B).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from streamgrad.cells import Params
from streamgrad.gradients.base import (
    Feedback,
    Finish,
    OnlineAlgorithm,
    effective_step,
    no_pending,
)
from streamgrad.gradients.traces import initial_traces, trace_gradient, trace_step
from streamgrad.model import Model, ModelParams, loss_value


class RFLOState(NamedTuple):
    traces: Params  # E, one per row-local leaf, in the leaf's layout
    feedback: jax.Array | None  # B (N, K) for feedback="random", else None


def rflo(
    model: Model, *, decay: float = 0.0, feedback: Feedback = "readout", seed: int = 0
) -> OnlineAlgorithm:
    """RFLO with constant trace retention `decay` and the readout or a random feedback."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"RFLO decay must lie in [0, 1], got {decay}")
    if feedback not in ("readout", "random"):
        raise ValueError(f"unknown RFLO feedback {feedback!r}; use readout or random")
    cell = model.cell

    def init(params: ModelParams, hidden: jax.Array) -> RFLOState:
        matrix = None
        if feedback == "random":
            n_outputs = model.readout.apply(params["readout"], hidden).shape[0]
            shape = (cell.hidden_size, n_outputs)
            scale = cell.hidden_size**-0.5
            matrix = scale * jax.random.normal(jax.random.PRNGKey(seed), shape, hidden.dtype)
        return RFLOState(initial_traces(cell, params), matrix)

    def advance(
        weights: Params, hidden: jax.Array, state: RFLOState, x: jax.Array, y: jax.Array
    ) -> tuple[jax.Array, Finish]:
        retention = jnp.full_like(hidden, decay)
        new_hidden, traces, immediate_vjp = trace_step(
            cell, weights, hidden, x, state.traces, retention
        )

        def finish(signal: jax.Array, output: jax.Array) -> tuple[Params, RFLOState]:
            if state.feedback is not None:  # g_k = B dl_k/do_k instead of delta_k
                error = jax.grad(lambda o: loss_value(model.loss, o, y))(output)
                signal = state.feedback @ error
            grads = trace_gradient(weights, traces, immediate_vjp, signal)
            return grads, RFLOState(traces, state.feedback)

        return new_hidden, finish

    return OnlineAlgorithm(
        "rflo",
        model,
        init,
        effective_step(model, advance),
        no_pending,
        every_step=True,
        influence=lambda state: (state.traces,),
        decay=decay,
        feedback=feedback,
        seed=seed,
    )
