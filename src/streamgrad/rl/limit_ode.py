"""The infinite-width limit of the online actor-critic (this project's reconstruction).

Kernels at initialisation. As N -> infinity the empirical NTK of `networks` tends to

    K(j, l) = E[sigma(h_j) sigma(h_l)] + E[C^2] E[sigma'(h_j) sigma'(h_l)] (1{j=l} + 1),
    h_j = W_j + c,

with W_j, W_l, c independent draws of the initial law. For j = l the expectations are over
h ~ W + c; for j != l the two pre-activations share only c, so E[g(h_j) g(h_l)] =
E_c[(E_W g(W + c))^2]. For the normal law these are Gauss-Hermite quadratures (exact to
rounding at 80 nodes for tanh); for any law `kernel(..., method="monte_carlo")` averages the
empirical NTK of one fresh network of `samples` units.

The ODE (time t = k / N). With nu_t the sampling law of the policy f_t (`exact.sampling_law`),
A and B the critic's and the actor's kernels:

    dQ_t(z)/dt = alpha sum_z' A(z, z') nu_t(z') [r(z') + gamma sum_{x'' live, a''} p(x''|z')
                 f_t(a''|x'') Q_t(x'', a'') - Q_t(z')]
    dP_t(z)/dt = zeta(t) sum_{(x', b)} B(z, (x', b)) sum_a' nu_t(x', a') Q_t(x', a')
                 d log f_t(a'|x') / d P_t(x', b)

with d log f(a|x)/d P(x, b) = (1 - eta) s(a|x) (1{a=b} - s(b|x)) / f(a|x), s = softmax P(x, .).
It starts from the finite networks' own initial outputs (the limit's initial condition is
random: a Gaussian process with covariance E[C^2] E[sigma(h_j) sigma(h_l)]) and is integrated
with scipy's solve_ivp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp

from streamgrad.errors import UserError
from streamgrad.rl.exact import Tables, policy, sampling_law
from streamgrad.rl.networks import NetworkLaw, empirical_ntk, init_network

QUADRATURE_NODES = 80


def _gaussian_mean(g: Callable[[np.ndarray], np.ndarray], scale: float, shift: np.ndarray):
    """E[g(scale * Z + shift)] for Z ~ N(0, 1), by Gauss-Hermite; vectorised over `shift`."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    values = g(scale * nodes[None, :] + np.asarray(shift, np.float64).reshape(-1, 1))
    return values @ weights / np.sqrt(2.0 * np.pi)


def _pair_moments(g: Callable[[np.ndarray], np.ndarray], law: NetworkLaw) -> tuple[float, float]:
    """(E[g(h)^2], E_c[(E_W g(W + c))^2]) for the normal law: the diagonal and off-diagonal
    second moments of g over two pairs' pre-activations."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    total = np.hypot(law.w_scale, law.bias_scale)
    diagonal = float(_gaussian_mean(lambda h: g(h) ** 2, total, np.zeros(1))[0])
    inner = _gaussian_mean(g, law.w_scale, law.bias_scale * nodes)
    off = float(inner**2 @ weights / np.sqrt(2.0 * np.pi))
    return diagonal, off


def kernel(
    n_pairs: int,
    law: NetworkLaw,
    *,
    method: str = "quadrature",
    samples: int = 200_000,
    seed: int = 0,
) -> np.ndarray:
    """Limit NTK (pairs, pairs) at initialisation: "quadrature" (normal law only) or
    "monte_carlo" (any law; error ~ samples^(-1/2))."""
    if method == "monte_carlo":
        params = init_network(jax.random.PRNGKey(seed), n_pairs, samples, law)
        return np.asarray(empirical_ntk(params))
    if method != "quadrature":
        raise UserError(f"kernel method: use quadrature or monte_carlo, got {method!r}")
    if law.law != "normal":
        raise UserError(f"kernel: quadrature needs the normal law, got {law.law!r}")
    value_diag, value_off = _pair_moments(np.tanh, law)
    slope_diag, slope_off = _pair_moments(lambda h: 1.0 - np.tanh(h) ** 2, law)
    eye = np.eye(n_pairs)
    value = value_off + (value_diag - value_off) * eye
    slope = slope_off + (slope_diag - slope_off) * eye
    return value + law.out_scale**2 * slope * (eye + 1.0)


@dataclass(frozen=True)
class Rates:
    """Critic rate alpha, actor schedule zeta(t) = zeta0 / (1 + t / t0)^rho (t = k / N),
    exploration eta and restart probability of the sampling chain."""

    alpha: float
    zeta0: float
    t0: float
    rho: float
    eta: float
    restart: float

    def zeta(self, t: float | jax.Array) -> float | jax.Array:
        return self.zeta0 / (1.0 + t / self.t0) ** self.rho


def vector_field(
    tables: Tables, critic_kernel: np.ndarray, actor_kernel: np.ndarray, rates: Rates
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """d(Q, P)/dt of the ODE above as a jitted function of (t, y), y = concat(Q, P) flat."""
    a_kernel, b_kernel = jnp.asarray(critic_kernel), jnp.asarray(actor_kernel)
    shape = tables.r.shape
    n = tables.r.size

    @jax.jit
    def field(t: jax.Array, y: jax.Array) -> jax.Array:
        q, logits = y[:n].reshape(shape), y[n:].reshape(shape)
        f = policy(logits, rates.eta)
        soft = jax.nn.softmax(logits, axis=-1)
        nu = sampling_law(tables, f, rates.restart)
        live_q = q * tables.live[:, None]  # the agent bootstraps 0 from terminal states
        target = tables.r + tables.gamma * jnp.einsum("xay,yb,yb->xa", tables.p, f, live_q)
        d_q = rates.alpha * a_kernel @ (nu * (target - q)).reshape(n)
        weight = nu * q * (1.0 - rates.eta) * soft / f
        score = weight - soft * weight.sum(-1, keepdims=True)
        d_p = rates.zeta(t) * b_kernel @ score.reshape(n)
        return jnp.concatenate([d_q, d_p])

    return field


def solve(
    field: Callable[[jax.Array, jax.Array], jax.Array],
    q0: np.ndarray,
    p0: np.ndarray,
    times: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate from (Q_0, P_0) (flat, pairs) and return Q_t, P_t at `times`, each
    (len(times), pairs). RK45 with tight tolerances (rtol 1e-7, atol 1e-9)."""
    y0 = np.concatenate([q0, p0]).astype(np.float64)
    solution = solve_ivp(
        lambda t, y: np.asarray(field(jnp.asarray(t), jnp.asarray(y))),
        (float(times[0]), float(times[-1])),
        y0,
        t_eval=times,
        rtol=1e-7,
        atol=1e-9,
    )
    if not solution.success:
        raise RuntimeError(f"limit ODE: solver failed: {solution.message}")
    n = q0.size
    return solution.y[:n].T, solution.y[n:].T
