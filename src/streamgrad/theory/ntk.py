"""The neural tangent kernel of a recurrent model between input histories: finite N and limit.

For a model with scalar output f(theta; z) after the input history z = (x_0, ..., x_{L-1})
(run from S_0 = 0; f = G(S_L), S_L = F(S_{L-1}, x_{L-1})) the empirical NTK is

    Theta^N(z, z') = sum_p  df(z)/dtheta_p  df(z')/dtheta_p       (all trainable parameters).

For the shared-coupling `meanfield` cell with readout N^(-1/2) sum_i C^i S^i (C^i ~ N(0, s_C^2))
it tends, with A = W.x + c + u*(z) and A' = W.x' + c + u*(z') (the same W and c, so jointly
Gaussian; x, x' the histories' last inputs, u* the limit memory when they arrive), to

    K(z, z') = E[sigma(A) sigma(A')]                          (readout C)
             + s_C^2 E[sigma'(A) sigma'(A')] (x . x')          (input weights W)
             + s_C^2 E[sigma'(A) sigma'(A')]                   (biases c),

and every path through the shared memory (all of B's part) is O(1/N) (docs/theory.md, 2.3).
`limit_ntk` integrates over (W, c) with the tensor trapezoid rule of `limits.normal_rule`, so
the kernel matrix is one product of feature matrices (points x nodes); that needs d + 1 <= 4.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.model import Model, ModelParams
from streamgrad.theory.limits import SharedLaws, limit_memory, normal_rule

MAX_NODES = 200_000
"""Largest tensor grid over (W, c) that `limit_ntk` builds."""


def network_output(
    model: Model, params: ModelParams, history: jax.Array, *, through_memory: bool = True
) -> jax.Array:
    """Scalar output f(theta; z) after the history (L, d), from S_0 = 0.

    through_memory=False stops the derivative at the shared memory u (cells with memory
    structure): what remains is the direct dependence df/dtheta at the last step."""
    cell = model.cell
    if not through_memory and cell.structure != "memory":
        raise ValueError(f"through_memory=False needs a memory-structured cell, not {cell.name}")
    weights = cell.effective(params["cell"])

    def step(hidden: jax.Array, x: jax.Array) -> tuple[jax.Array, None]:
        if through_memory:
            return cell.step(weights, hidden, x), None
        u = jax.lax.stop_gradient(cell.memory(weights, hidden))
        return cell.step_from_memory(weights, u, x), None

    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    hidden, _ = jax.lax.scan(step, cell.initial_hidden(dtype), history)
    output = model.readout.apply(params["readout"], hidden)
    if output.shape != (1,):
        raise ValueError(f"the NTK here is for scalar outputs, the model has {output.shape}")
    return output[0]


@lru_cache(maxsize=32)
def _batched(model: Model, through_memory: bool, derivative: bool) -> Any:
    """jit of f (or df/dtheta) over a batch of histories, params an argument (compiled once
    per model and history shape)."""

    def output(params: ModelParams, history: jax.Array) -> jax.Array:
        return network_output(model, params, history, through_memory=through_memory)

    return jax.jit(jax.vmap(jax.grad(output) if derivative else output, in_axes=(None, 0)))


def _chunks(histories: np.ndarray, chunk_size: int) -> tuple[list[np.ndarray], int]:
    """Histories (H, L, d) in chunks of equal size (the last padded by repeating the last
    history, so one compiled shape serves all), and H."""
    histories = np.asarray(histories)
    if histories.ndim != 3:
        raise ValueError(f"histories must have shape (H, L, d), got {histories.shape}")
    count = len(histories)
    padded = np.concatenate([histories, np.repeat(histories[-1:], -count % chunk_size, axis=0)])
    return [padded[i : i + chunk_size] for i in range(0, len(padded), chunk_size)], count


def batch_outputs(
    model: Model, params: ModelParams, histories: np.ndarray, *, chunk_size: int = 64
) -> np.ndarray:
    """f(theta; z_h) for histories (H, L, d): (H,), `chunk_size` histories at a time."""
    forward = _batched(model, True, False)
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    chunks, count = _chunks(histories, chunk_size)
    values = [np.asarray(forward(params, jnp.asarray(chunk, dtype))) for chunk in chunks]
    return np.concatenate(values)[:count]


def output_jacobian(
    model: Model,
    params: ModelParams,
    histories: np.ndarray,
    *,
    through_memory: bool = True,
    chunk_size: int = 4,
) -> dict[str, np.ndarray]:
    """df(z_h)/dtheta for histories (H, L, d): {"cell/W": (H, size), ...} in float64.

    One reverse-mode pass per history, `chunk_size` histories at a time (the pass keeps the L
    hidden states of each, so memory is chunk_size * L * N numbers)."""
    grad = _batched(model, through_memory, True)
    dtype = jax.tree_util.tree_leaves(params)[0].dtype
    chunks, count = _chunks(histories, chunk_size)
    rows: dict[str, list[np.ndarray]] = {}
    for chunk in chunks:
        block = grad(params, jnp.asarray(chunk, dtype))
        for group, leaves in block.items():
            for name, leaf in leaves.items():
                flat = np.asarray(leaf, np.float64).reshape(len(chunk), -1)
                rows.setdefault(f"{group}/{name}", []).append(flat)
    return {name: np.concatenate(parts)[:count] for name, parts in rows.items()}


def empirical_ntk(
    model: Model,
    params: ModelParams,
    histories: np.ndarray,
    *,
    through_memory: bool = True,
    by_leaf: bool = False,
    chunk_size: int = 4,
) -> np.ndarray | dict[str, np.ndarray]:
    """Theta^N(z_h, z_g) for histories (H, L, d): (H, H), or one (H, H) block per parameter leaf
    ("cell/W", "cell/c", "cell/B", "readout/C") with `by_leaf`. through_memory=False keeps only
    the direct derivatives (see `network_output`); the difference is the memory paths' part."""
    jacobian = output_jacobian(
        model, params, histories, through_memory=through_memory, chunk_size=chunk_size
    )
    blocks = {name: rows @ rows.T for name, rows in jacobian.items()}
    return blocks if by_leaf else sum(blocks.values())


def limit_ntk(
    cell_options: Mapping[str, Any],
    histories: np.ndarray,
    *,
    readout_std: float = 1.0,
    by_leaf: bool = False,
) -> np.ndarray | dict[str, np.ndarray]:
    """The limit kernel K(z_h, z_g) for histories (H, L, d) (module docstring): (H, H), or
    {"readout/C", "cell/W", "cell/c"} blocks with `by_leaf` ("cell/B" is 0 in the limit).
    readout_std = s_C (1 for `make_model`'s N^(-beta) readout)."""
    laws = SharedLaws.from_options(cell_options)
    histories = np.asarray(histories, np.float64)
    if histories.ndim != 3:
        raise ValueError(f"histories must have shape (H, L, d), got {histories.shape}")
    memory = limit_memory(cell_options, histories[:, :-1])[:, -1]  # u* when x_{L-1} arrives
    last = histories[:, -1]  # (H, d)
    d = last.shape[1]
    rules = [normal_rule(laws.w_std * np.abs(last[:, j]).max()) for j in range(d)]
    rules.append(normal_rule(laws.bias_std))
    size = int(np.prod([len(nodes) for nodes, _ in rules]))
    if size > MAX_NODES:
        raise ValueError(
            f"limit_ntk: the quadrature grid over (W, c) would have {size:,} nodes "
            f"(> {MAX_NODES:,}); it is meant for input dimension d <= 3"
        )
    grids = np.meshgrid(*[nodes for nodes, _ in rules], indexing="ij")
    weight = np.ones(())
    for _, w in rules:
        weight = np.multiply.outer(weight, w)
    w_nodes = laws.w_std * np.stack([g.ravel() for g in grids[:-1]], axis=1)  # (Q, d)
    c_nodes = laws.bias_mean + laws.bias_std * grids[-1].ravel()  # (Q,)
    root = np.sqrt(weight.ravel())
    pre = last @ w_nodes.T + c_nodes + memory[:, None]  # (H, Q)
    value = laws.sigma.value(pre) * root
    slope = laws.sigma.slope(pre) * root
    slopes = readout_std**2 * (slope @ slope.T)
    blocks = {"readout/C": value @ value.T, "cell/W": slopes * (last @ last.T), "cell/c": slopes}
    return blocks if by_leaf else sum(blocks.values())
