"""Timing primitives of the benchmark: one online learner step, the dense-RTRL product it
cannot beat, one large GEMM, and the slope of log time against log P.

* step (`time_learner`): the whole `OnlineLearner.step` (forward, the algorithm's update, the
  gradient, one optax SGD update) as it runs inside `OnlineLearner.run`, a jitted `lax.scan`
  over a chunk of a synthetic stream (x_k, y_k ~ N(0, 1)), input size d = 1, MSE loss. After
  the compile and one warm-up chunk, `repeats` chunks are timed wall-clock up to
  `block_until_ready`; median and min of chunk time / chunk length in microseconds per step,
  steps/s from the median. The chunk length is chosen so that one chunk takes about
  `target_seconds` (at most `steps` steps), so the per-call dispatch is amortised as it is in a
  real run.
* product (`time_product`): exact dense RTRL updates J_{k+1} = D_k J_k + I_k, one (N x N) @
  (N x P) product per step (2 N^2 P flops, P = the number of weights psi of the recurrent cell).
  No exact dense RTRL step can be cheaper than that product. B <- Q B is repeated inside one
  jitted loop (Q orthogonal, so the values stay O(1) and nothing can be hoisted; the loop is
  unrolled twice so its carry costs no copy), time per product as median and min over
  `repeats`. The same flops in the transposed layout, (P x N) @ (N x N), which is how
  streamgrad's dense RTRL stores J, are timed too.
* gemm (`time_gemm`): one large square product, the attainable GFLOP/s.
* ensemble (`time_ensemble`): the step of a learning-rate ensemble (G copies of the learner
  at G learning rates in one jitted program) against one learner's, timed the same way in
  alternating rounds (one chunk of each per round), the ratio taken per round.
* slope (`fit_slope`): the least-squares slope of log(step time) against log(P) over the sizes
  with N >= `fit_from` (all sizes when fewer than two qualify). Slope 1 means time linear in P.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from streamgrad.ensemble import LrEnsemble
from streamgrad.gradients import OnlineAlgorithm, make_algorithm
from streamgrad.model import make_model
from streamgrad.online import OnlineLearner

LEARNING_RATE = 1e-3


def _cell_options(spec: str) -> tuple[str, dict[str, Any]]:
    """'meanfield:shared' -> ('meanfield', {'coupling': 'shared'}); 'elman' -> ('elman', {})."""
    name, _, coupling = spec.partition(":")
    return name, ({"coupling": coupling} if coupling else {})


def _timed(function: Callable[[], Any], repeats: int) -> list[float]:
    """Wall-clock seconds of `repeats` calls, each waited for with block_until_ready."""
    seconds = []
    for _ in range(repeats):
        tic = time.perf_counter()
        jax.block_until_ready(function())
        seconds.append(time.perf_counter() - tic)
    return seconds


def _chunk_length(per_step: float, target_seconds: float, most: int, multiple: int) -> int:
    """Steps per chunk so that one chunk takes about target_seconds, a multiple of `multiple`
    within [multiple, most]."""
    wanted = target_seconds / max(per_step, 1e-9)
    return int(min(max(multiple, math.ceil(wanted / multiple) * multiple), most))


def time_product(
    n: int,
    p: int,
    dtype: str,
    *,
    transposed: bool = False,
    repeats: int = 5,
    target_seconds: float = 0.2,
    quick: bool = False,
) -> tuple[float, float]:
    """(median, min) seconds of one product (N x N) @ (N x P), or (P x N) @ (N x N) when
    `transposed`, as one iteration of a jitted loop B <- Q B (Q orthogonal (N, N))."""
    rng = np.random.default_rng(0)
    q = jnp.asarray(np.linalg.qr(rng.standard_normal((n, n)))[0], dtype)
    b = jnp.asarray(rng.standard_normal((p, n) if transposed else (n, p)), dtype)

    def compiled(count: int) -> Callable[[], jax.Array]:
        def body(_: Any, m: jax.Array) -> jax.Array:
            return m @ q.T if transposed else q @ m

        loop = jax.jit(lambda m: jax.lax.fori_loop(0, count, body, m, unroll=2))
        jax.block_until_ready(loop(b))
        return lambda: loop(b)

    count = 2
    if not quick:  # calibrate: about target_seconds per timed call
        (probe,) = _timed(compiled(count), 1)
        count = _chunk_length(probe / count, target_seconds, 100_000, 2)
    seconds = np.asarray(_timed(compiled(count), repeats)) / count
    return float(np.median(seconds)), float(seconds.min())


def time_gemm(size: int, dtype: str, repeats: int) -> dict[str, float]:
    """Best time and GFLOP/s of one jitted (size x size) @ (size x size) product."""
    a = jnp.asarray(np.random.default_rng(1).standard_normal((size, size)), dtype)
    product = jax.jit(lambda m: m @ m)
    jax.block_until_ready(product(a))
    best = min(_timed(lambda: product(a), repeats))
    return {"size": size, "seconds": best, "gflops": 2 * size**3 / best / 1e9}


def _sgd_learner(algorithm: OnlineAlgorithm, lrs: Sequence[float]) -> OnlineLearner:
    """SGD at LEARNING_RATE, or with `lrs` the learning-rate ensemble of SGD at those rates."""
    if lrs:
        return LrEnsemble(OnlineLearner(algorithm, optax.sgd(1.0)), lrs)
    return OnlineLearner(algorithm, optax.sgd(LEARNING_RATE))


class _ChunkTimer:
    """One learner (or ensemble of SGD at `lrs`) on a synthetic stream, compiled and warmed
    up, with its chunk length chosen (module docstring); `time_chunk()` runs one more chunk
    and returns its wall-clock seconds."""

    def __init__(
        self,
        cell: str,
        algorithm: str,
        n: int,
        dtype: str,
        *,
        steps: int,
        target_seconds: float,
        quick: bool,
        lrs: Sequence[float] = (),
    ) -> None:
        name, options = _cell_options(cell)
        model = make_model(name, n, 1, **options)
        self.learner = _sgd_learner(make_algorithm(algorithm, model), lrs)
        self.state = self.learner.init(model.init(jax.random.PRNGKey(0), dtype))
        self.rng = np.random.default_rng(2)
        self.dtype = dtype
        self.length = steps
        if not quick:  # calibrate the chunk length on a short chunk
            probe_length = min(10, steps)
            self._prepare(probe_length)
            probe = self.time_chunk()
            self.length = _chunk_length(probe / probe_length, target_seconds, steps, 10)
        self._prepare(self.length)

    def _prepare(self, length: int) -> None:
        """Draw a chunk of `length` steps and run it once (compile and warm-up)."""
        self.inputs = jnp.asarray(self.rng.standard_normal((length, 1)), self.dtype)
        self.targets = jnp.asarray(self.rng.standard_normal(length), self.dtype)
        self.time_chunk()

    def time_chunk(self) -> float:
        tic = time.perf_counter()
        self.state, (self.losses, _) = self.learner.run(self.state, self.inputs, self.targets)
        jax.block_until_ready((self.state, self.losses))
        return time.perf_counter() - tic


def time_learner(
    cell: str,
    algorithm: str,
    n: int,
    dtype: str,
    *,
    steps: int,
    repeats: int,
    target_seconds: float,
    quick: bool,
) -> dict[str, Any]:
    """Median and min microseconds per learner step for one cell x algorithm x N (see the
    module docstring), with the chunk length, P and whether the losses stayed finite."""
    timer = _ChunkTimer(
        cell, algorithm, n, dtype, steps=steps, target_seconds=target_seconds, quick=quick
    )
    per_step = np.asarray([timer.time_chunk() for _ in range(repeats)]) / timer.length * 1e6
    median = float(np.median(per_step))
    return {
        "cell": cell,
        "algorithm": algorithm,
        "N": n,
        "P": count_weights(cell, n, dtype),
        "chunk_steps": timer.length,
        "repeats": repeats,
        "median_us": median,
        "min_us": float(per_step.min()),
        "steps_per_second": 1e6 / median,
        "finite": bool(np.isfinite(np.asarray(timer.losses)).all()),
    }


def time_ensemble(
    lrs: Sequence[float], cell: str, algorithm: str, n: int, dtype: str, **timing: Any
) -> dict[str, Any]:
    """The learning-rate ensemble of `lrs` against one learner: after both are compiled and
    warmed up, `repeats` rounds each time one chunk of the learner and then one of the
    ensemble, so both see the same machine load; microseconds per step of each (medians over
    rounds), each round's ratio ensemble / learner (`round_ratios`) and their median `ratio`.
    `timing`: steps, repeats, target_seconds, quick, as for `time_learner`."""
    repeats = timing.pop("repeats")
    one = _ChunkTimer(cell, algorithm, n, dtype, **timing)
    ensemble = _ChunkTimer(cell, algorithm, n, dtype, lrs=lrs, **timing)
    rounds = np.asarray(
        [(one.time_chunk() / one.length, ensemble.time_chunk() / ensemble.length)
         for _ in range(repeats)]
    ) * 1e6  # fmt: skip
    return {
        "cell": cell,
        "algorithm": algorithm,
        "N": n,
        "lrs": list(lrs),
        "single_us": float(np.median(rounds[:, 0])),
        "ensemble_us": float(np.median(rounds[:, 1])),
        "ratio": float(np.median(rounds[:, 1] / rounds[:, 0])),
        "round_ratios": (rounds[:, 1] / rounds[:, 0]).tolist(),
        "finite": all(np.isfinite(np.asarray(t.losses)).all() for t in (one, ensemble)),
    }


def fit_slope(points: Sequence[tuple[int, float, float]], fit_from: float) -> dict[str, Any]:
    """Least-squares slope of log(time) on log(P) from (N, P, time) points, over N >= fit_from
    (all points when fewer than two qualify)."""
    chosen = [pt for pt in points if pt[0] >= fit_from]
    if len(chosen) < 2:
        chosen = list(points)
    if len(chosen) < 2:
        return {"slope": None, "fit_sizes": [pt[0] for pt in chosen]}
    log_p = np.log([pt[1] for pt in chosen])
    log_t = np.log([pt[2] for pt in chosen])
    return {"slope": float(np.polyfit(log_p, log_t, 1)[0]), "fit_sizes": [pt[0] for pt in chosen]}


def count_weights(cell: str, n: int, dtype: str) -> int:
    """P, the number of weights psi of the recurrent cell (input size 1); no arrays built."""
    name, options = _cell_options(cell)
    model = make_model(name, n, 1, **options)
    shapes = jax.eval_shape(
        lambda key: model.cell.effective(model.cell.init(key, dtype)), jax.random.PRNGKey(0)
    )
    return sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(shapes))


def time_products(
    cell: str, n: int, p: int, dtype: str, repeats: int, quick: bool
) -> dict[str, Any]:
    """Both layouts of the dense-RTRL product for one (cell, N), in microseconds, with its
    flops and GFLOP/s."""
    median, best = time_product(n, p, dtype, repeats=repeats, quick=quick)
    median_t, best_t = time_product(n, p, dtype, transposed=True, repeats=repeats, quick=quick)
    return {
        "cell": cell,
        "N": n,
        "P": p,
        "flops": 2 * n * n * p,
        "product_us": median * 1e6,
        "product_min_us": best * 1e6,
        "product_gflops": 2 * n * n * p / median / 1e9,
        "product_transposed_us": median_t * 1e6,
        "product_transposed_min_us": best_t * 1e6,
    }


def dense_path(cell: str, algorithm: str) -> tuple[bool, bool]:
    """(whether the cell's recurrence is dense, whether the algorithm runs dense-path RTRL);
    raises ValueError for an algorithm spec that make_algorithm rejects."""
    name, options = _cell_options(cell)
    model = make_model(name, 2, 1, **options)
    built = make_algorithm(algorithm, model)
    return model.cell.structure == "dense", built.path == "dense"
