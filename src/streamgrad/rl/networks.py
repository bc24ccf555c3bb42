"""Single-hidden-layer networks on state-action pairs, N^(-1/2) scaling, one-hot embedding.

A pair z = (x, a) has the flat index j = x A + a and the one-hot embedding e_j, so the
pre-activation of unit i is W^i . e_j + c^i = W[j, i] + c[i] (W is stored (pairs, N): the
column of unit i along axis 1, so a pair's weights are a contiguous row). The output is

    out(j) = N^(-1/2) sum_i C^i sigma(W[j, i] + c^i),    sigma = tanh,

with parameters drawn i.i.d. per unit: W[j, i] ~ w_scale * xi, c^i ~ bias_scale * xi,
C^i ~ out_scale * xi, xi standard normal (law "normal") or uniform with variance 1 ("uniform").
Its gradient at pair j is

    d out(j)/dC^i = N^(-1/2) sigma(h_ji),
    d out(j)/dW[j, i] = d out(j)/dc^i = N^(-1/2) C^i sigma'(h_ji)

(zero in the other rows of W), h_ji = W[j, i] + c^i, and the empirical neural tangent kernel is

    K^N(j, l) = (1/N) sum_i [sigma(h_ji) sigma(h_li)
                             + (C^i)^2 sigma'(h_ji) sigma'(h_li) (1{j=l} + 1)].
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from streamgrad.errors import UserError

Params = dict[str, jax.Array]
LAWS = ("normal", "uniform")


@dataclass(frozen=True)
class NetworkLaw:
    """Scales and shape of the i.i.d. initial law of (W, c, C); defaults as in the experiments."""

    w_scale: float = 1.0
    bias_scale: float = 1.0
    out_scale: float = 1.0
    law: str = "normal"

    def __post_init__(self) -> None:
        if self.law not in LAWS:
            raise UserError(f"network law: use one of {', '.join(LAWS)}, got {self.law!r}")


def _draw(key: jax.Array, shape: tuple[int, ...], law: str, dtype: jnp.dtype) -> jax.Array:
    if law == "normal":
        return jax.random.normal(key, shape, dtype)
    return jax.random.uniform(key, shape, dtype, -(3.0**0.5), 3.0**0.5)  # variance 1


def init_network(
    key: jax.Array, n_pairs: int, width: int, law: NetworkLaw, dtype: jnp.dtype = jnp.float64
) -> Params:
    """Parameters {"W": (pairs, N), "c": (N,), "C": (N,)} of a width-N network."""
    kw, kc, ko = jax.random.split(key, 3)
    return {
        "W": law.w_scale * _draw(kw, (n_pairs, width), law.law, dtype),
        "c": law.bias_scale * _draw(kc, (width,), law.law, dtype),
        "C": law.out_scale * _draw(ko, (width,), law.law, dtype),
    }


def outputs(params: Params, rows: jax.Array) -> jax.Array:
    """out(j) for the pair indices `rows` (k,) -> (k,)."""
    hidden = jnp.tanh(params["W"][rows] + params["c"])
    return hidden @ params["C"] / jnp.sqrt(params["C"].shape[0])


def add_gradients(params: Params, rows: jax.Array, weights: jax.Array, step: float) -> Params:
    """params + step * sum_k weights_k * grad out(rows_k), from the closed-form gradient above
    (rows must be distinct). One critic step is rows = [j], weights = [delta]; one actor step
    is rows = the pairs (x, .), weights = Q * d log f(a|x) / d out(x, .)."""
    scale = step / jnp.sqrt(params["C"].shape[0])
    pre = params["W"][rows] + params["c"]  # (k, N)
    weighted = weights[:, None] * (1.0 - jnp.tanh(pre) ** 2) * params["C"]  # (k, N)
    return {
        "W": params["W"].at[rows].add(scale * weighted),
        "c": params["c"] + scale * weighted.sum(0),
        "C": params["C"] + scale * (weights @ jnp.tanh(pre)),
    }


def empirical_ntk(params: Params) -> jax.Array:
    """K^N (pairs, pairs) of the formula above."""
    pre = params["W"] + params["c"]
    value, slope = jnp.tanh(pre), (1.0 - jnp.tanh(pre) ** 2) * params["C"]
    width = params["C"].shape[0]
    plus = jnp.eye(pre.shape[0]) + 1.0
    return (value @ value.T + (slope @ slope.T) * plus) / width
