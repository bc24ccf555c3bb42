"""The N -> infinity limit of the untrained shared-coupling network (docs/theory.md, section 2).

The `meanfield` cell with coupling "shared" has i.i.d. per-unit parameters
W^i ~ N(0, w^2 I_d), c^i ~ N(m_c, s_c^2), B^i ~ N(m_B, s_B^2) (independent) and

    S^i_{k+1} = sigma(W^i . x_k + c^i + u_k),     u_k = (1/N) sum_j g(B^j) S^j_k,   S_0 = 0.

For a fixed data path the memory tends to the deterministic recursion (u*_0 = 0)

    u*_{k+1} = E[g(B)] E[sigma(Z_k)],    Z_k ~ N(m_c + u*_k, w^2 |x_k|^2 + s_c^2),

and one unit S^i_{k+1} tends in law to sigma(Z_k). Both are one-dimensional Gaussian integrals.

Quadrature (project choice): Gauss-Hermite loses accuracy once the pre-activation's standard
deviation exceeds about 2 (for tanh, 128 nodes are off by 8e-4 at sd 5 and 9e-3 at sd 10, since
tanh(m + sd xi) is nearly a step in xi). `normal_rule` uses the trapezoid rule in the
standard-normal variable instead, with a spacing fitted to the steepest integrand: for an
analytic sigma whose nearest complex singularity lies at distance delta from the real axis
(tanh: pi/2, sigmoid: pi) the error is about exp(-2 pi delta / (h sd)); at the spacing
h sd = 0.3 used here it is below 1e-13 for tanh at every sd (4e-14 at sd 1, measured).
E[g(B)] (g is only twice differentiable) is integrated adaptively with the break points +-M.
The laws must be the Gaussian laws of the `meanfield` cell; other parameter laws would need
their own E[g(B)] and a quadrature over their law.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import integrate, special, stats

from streamgrad.cells.clipping import smooth_clip
from streamgrad.cells.meanfield import meanfield

STEEPEST_SPACING = 0.3
"""Trapezoid spacing times the integrand's scale (see the module docstring)."""
GAUSSIAN_SPACING = 0.5
"""Largest spacing in the standard-normal variable (the Gaussian weight alone needs no finer)."""
HALF_WIDTH = 8.0
"""The rule covers xi in [-8, 8]; the Gaussian mass outside is 1.2e-15."""


@dataclass(frozen=True)
class Activation:
    """sigma, sigma', sigma^(-1) and (sigma^(-1))' on numpy arrays, and sigma's range."""

    value: Any
    slope: Any
    inverse: Any
    inverse_slope: Any
    low: float
    high: float


def _tanh_slope(a: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(a) ** 2


def _sigmoid_slope(a: np.ndarray) -> np.ndarray:
    s = special.expit(a)
    return s * (1.0 - s)


ACTIVATIONS = {
    "tanh": Activation(np.tanh, _tanh_slope, np.arctanh, lambda s: 1.0 / (1.0 - s * s), -1.0, 1.0),
    "sigmoid": Activation(
        special.expit, _sigmoid_slope, special.logit, lambda s: 1.0 / (s * (1.0 - s)), 0.0, 1.0
    ),
}


@dataclass(frozen=True)
class SharedLaws:
    """The parameter laws and activation of a shared-coupling `meanfield` cell."""

    activation: str
    w_std: float
    bias_mean: float
    bias_std: float
    recurrent_mean: float
    recurrent_std: float
    clip_at: float
    bound: float

    @classmethod
    def from_options(cls, cell_options: Mapping[str, Any]) -> SharedLaws:
        """From `cell.options` or keyword options of `meanfield` (missing ones take the cell's
        defaults). Raises ValueError for another coupling or an unknown option."""
        options = dict(cell_options)
        if options.get("coupling", "shared") != "shared":
            raise ValueError(
                f"the limits here are for coupling 'shared', got {options['coupling']!r}"
            )
        filled = meanfield(1, 1, **options).options  # validates and fills the defaults
        return cls(**{name: filled[name] for name in cls.__dataclass_fields__})

    @property
    def sigma(self) -> Activation:
        return ACTIVATIONS[self.activation]

    def clip_mean(self) -> float:
        """E[g(B)], B ~ N(m_B, s_B^2)."""
        return _clip_mean(self.recurrent_mean, self.recurrent_std, self.clip_at, self.bound)

    def preactivation(self, x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean m_c + u and standard deviation sqrt(w^2 |x|^2 + s_c^2) of Z = W.x + c + u;
        x (..., d), u broadcastable to (...)."""
        x = np.asarray(x, np.float64)
        std = np.sqrt(self.w_std**2 * np.sum(x * x, axis=-1) + self.bias_std**2)
        return self.bias_mean + np.asarray(u, np.float64), std


@lru_cache(maxsize=64)
def _clip_mean(mean: float, std: float, clip_at: float, bound: float) -> float:
    def g(b: float) -> float:
        return float(smooth_clip(np.float64(b), clip_at, bound))

    if std == 0.0:
        return g(mean)
    density = stats.norm(mean, std).pdf
    lo, hi = mean - HALF_WIDTH * std, mean + HALF_WIDTH * std
    breaks = [b for b in (-clip_at, clip_at) if lo < b < hi]
    value, _ = integrate.quad(
        lambda b: g(b) * density(b), lo, hi, points=breaks or None, epsabs=1e-13, limit=200
    )
    return value


def normal_rule(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes xi_j and weights q_j with sum_j q_j h(a + scale xi_j) = E[h(a + scale xi)],
    xi ~ N(0, 1), for h = sigma, sigma', their products (trapezoid rule, module docstring)."""
    spacing = min(GAUSSIAN_SPACING, STEEPEST_SPACING / max(float(scale), 1e-300))
    half = int(np.ceil(HALF_WIDTH / spacing))
    nodes = np.linspace(-HALF_WIDTH, HALF_WIDTH, 2 * half + 1)
    weights = np.exp(-0.5 * nodes**2)
    return nodes, weights / weights.sum()


def limit_memory(cell_options: Mapping[str, Any], xs: np.ndarray) -> np.ndarray:
    """The limit memory u*_0 = 0, ..., u*_K along data paths xs (..., K, d): (..., K+1).

    u*_k is the memory that meets input x_k (S_{k+1} = sigma(W.x_k + c + u*_k)); u*_K is the
    memory after the whole path. Leading axes are independent paths."""
    laws = SharedLaws.from_options(cell_options)
    xs = np.asarray(xs, np.float64)
    if xs.ndim < 2:
        raise ValueError(f"xs must have shape (..., K, d), got {xs.shape}")
    mean_shift, std = laws.preactivation(xs, 0.0)  # (..., K)
    nodes, weights = normal_rule(float(std.max(initial=0.0)))
    clip_mean, sigma = laws.clip_mean(), laws.sigma.value
    memory = np.zeros((*xs.shape[:-2], xs.shape[-2] + 1))
    u = memory[..., 0]
    for k in range(xs.shape[-2]):
        pre = (mean_shift + u)[..., None] + std[..., k, None] * nodes
        u = clip_mean * (sigma(pre) @ weights)
        memory[..., k + 1] = u
    return memory


@dataclass(frozen=True)
class HiddenLaw:
    """The limit law of one hidden unit sigma(Z), Z ~ N(mean, std^2) (arrays of one shape)."""

    activation: Activation
    mean: np.ndarray
    std: np.ndarray

    def pdf(self, s: np.ndarray) -> np.ndarray:
        """Density p_Z(sigma^(-1)(s)) (sigma^(-1))'(s) on sigma's range, 0 outside; s broadcasts
        against the law's shape (pass s[..., None] for a grid over a batch of laws)."""
        s = np.asarray(s, np.float64)
        inside = (s > self.activation.low) & (s < self.activation.high)
        safe = np.where(inside, s, 0.5 * (self.activation.low + self.activation.high))
        z = (self.activation.inverse(safe) - self.mean) / self.std
        density = stats.norm.pdf(z) / self.std * self.activation.inverse_slope(safe)
        return np.where(inside, density, 0.0)

    def cdf(self, s: np.ndarray) -> np.ndarray:
        """P(sigma(Z) <= s)."""
        s = np.asarray(s, np.float64)
        clipped = np.clip(s, self.activation.low, self.activation.high)
        with np.errstate(divide="ignore"):
            z = (self.activation.inverse(clipped) - self.mean) / self.std
        return stats.norm.cdf(z)

    def moment(self, power: int) -> np.ndarray:
        """E[sigma(Z)^power]."""
        nodes, weights = normal_rule(float(np.max(self.std)))
        pre = np.asarray(self.mean)[..., None] + np.asarray(self.std)[..., None] * nodes
        return self.activation.value(pre) ** power @ weights


def hidden_law(cell_options: Mapping[str, Any], x: np.ndarray, u: np.ndarray) -> HiddenLaw:
    """The limit law of S^i_{k+1} = sigma(W^i . x + c^i + u) given input x (..., d) and memory
    u (broadcastable to (...)): sigma(Z), Z ~ N(m_c + u, w^2 |x|^2 + s_c^2).
    Raises ValueError when the law has no density (w x = 0 and s_c = 0)."""
    laws = SharedLaws.from_options(cell_options)
    mean, std = laws.preactivation(x, u)
    mean, std = np.broadcast_arrays(mean, std)
    if np.any(std <= 0):
        raise ValueError("the hidden unit is deterministic (w_std |x| = 0 and bias_std = 0)")
    return HiddenLaw(laws.sigma, mean, std)
