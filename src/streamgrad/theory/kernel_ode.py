"""The linear training ODE of the kernel regime on a finite set of histories.

With the stationary law pi of the data replaced by M sampled histories Z_1..Z_M (targets
Y_1..Y_M) and further points z (evaluation histories) appended after them, the outputs follow

    d f_t(z) / dt = -(alpha / M) sum_m K(z, Z_m) (f_t(Z_m) - Y_m).

For SGD with step alpha_sgd / N on the loss (o - y)^2 and t = k / N, alpha = 2 alpha_sgd.
The solution is closed form: with K_MM = Q diag(lambda) Q^T (symmetric, positive semidefinite),
r_0 = Q^T (f_0(Z) - Y) and c = alpha / M,

    f_t = f_0 - c K_{.M} Q diag(phi_t(lambda)) r_0,
    phi_t(lambda) = (1 - e^{-c lambda t}) / (c lambda)   (phi_t(0) = t),

which on the M sampled points is Y + Q diag(e^{-c lambda t}) r_0.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg


def kernel_ode(
    kernel: np.ndarray,
    targets: np.ndarray,
    f0: np.ndarray,
    alpha: float,
    times: np.ndarray,
) -> np.ndarray:
    """f_t at every time: kernel (P, P) over the M = len(targets) sampled histories first and
    the other points after them, f0 (P,), times (T,) >= 0 -> (T, P)."""
    kernel = np.asarray(kernel, np.float64)
    targets = np.asarray(targets, np.float64)
    f0 = np.asarray(f0, np.float64)
    times = np.asarray(times, np.float64)
    m, p = len(targets), len(f0)
    if kernel.shape != (p, p) or not 0 < m <= p:
        raise ValueError(
            f"kernel must be (P, P) with P = len(f0) = {p} >= len(targets) = {m} > 0, "
            f"got {kernel.shape}"
        )
    if np.any(times < 0):
        raise ValueError("times must be >= 0")
    rate = alpha / m
    eigenvalues, vectors = linalg.eigh(kernel[:m, :m])
    eigenvalues = np.maximum(eigenvalues, 0.0)  # round-off below 0 of a PSD matrix
    residual = vectors.T @ (f0[:m] - targets)
    pull = rate * kernel[:, :m] @ vectors  # (P, M)
    exponent = rate * np.multiply.outer(times, eigenvalues)  # (T, M)
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.where(exponent > 0, -np.expm1(-exponent) / (rate * eigenvalues), times[:, None])
    return f0 - (phi * residual) @ pull.T
