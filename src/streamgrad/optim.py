"""Optimizers and learning-rate schedules, built from optax.

Schedules (k = update count):
- constant:      alpha_k = alpha_0
- robbins-monro: alpha_k = alpha_0 / (1 + k / k_0)^rho, rho in (1/2, 1] so that
                 sum alpha_k = inf and sum alpha_k^2 < inf
- cosine:        optax.cosine_decay_schedule(alpha_0, decay_steps)
- exponential:   optax.exponential_decay(alpha_0, decay_steps, decay_rate)

`with_lr_scale` appends a multiplier c (1 at the start) that lives in the optimizer state, so
a run can lower its learning rate to c * alpha_k after a divergence and a checkpoint keeps it.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import optax

OPTIMIZERS = {"sgd": optax.sgd, "adam": optax.adam, "rmsprop": optax.rmsprop, "adamw": optax.adamw}
SCHEDULES = ("constant", "robbins-monro", "cosine", "exponential")


def robbins_monro(alpha0: float, k0: float, rho: float) -> optax.Schedule:
    """alpha_k = alpha0 / (1 + k / k0)^rho."""
    if not 0.5 < rho <= 1.0:
        raise ValueError(f"Robbins-Monro needs rho in (1/2, 1], got {rho}")
    if k0 <= 0:
        raise ValueError(f"Robbins-Monro needs k0 > 0, got {k0}")
    return lambda count: alpha0 / (1.0 + jnp.asarray(count) / k0) ** rho


def make_schedule(
    name: str,
    lr: float,
    *,
    k0: float = 10_000.0,
    rho: float = 0.75,
    decay_steps: int = 100_000,
    decay_rate: float = 0.5,
) -> optax.Schedule:
    if lr <= 0:
        raise ValueError(f"learning rate must be > 0, got {lr}")
    if name == "constant":
        return optax.constant_schedule(lr)
    if name == "robbins-monro":
        return robbins_monro(lr, k0, rho)
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, decay_steps)
    if name == "exponential":
        return optax.exponential_decay(lr, decay_steps, decay_rate)
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")


def make_optimizer(
    name: str, schedule: optax.Schedule, *, clip_norm: float | None = None
) -> optax.GradientTransformation:
    """optax optimizer by name with a schedule, optionally after global-norm clipping."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    optimizer = OPTIMIZERS[name](schedule)
    if clip_norm is None:
        return optimizer
    if clip_norm <= 0:
        raise ValueError(f"gradient clipping norm must be > 0, got {clip_norm}")
    return optax.chain(optax.clip_by_global_norm(clip_norm), optimizer)


def with_lr_scale(optimizer: optax.GradientTransformation) -> optax.GradientTransformation:
    """`optimizer` followed by a stateful multiplier c of its updates, c = 1 at init."""
    return optax.chain(optimizer, optax.inject_hyperparams(optax.scale)(step_size=1.0))


def lr_scale(opt_state: Any) -> float:
    """The multiplier c in the state of a `with_lr_scale` optimizer."""
    return float(opt_state[-1].hyperparams["step_size"])


def scale_lr(opt_state: Any, factor: float) -> Any:
    """State of a `with_lr_scale` optimizer with its multiplier c replaced by c * factor."""
    *inner, scaler = opt_state
    hyperparams = dict(scaler.hyperparams)
    hyperparams["step_size"] = hyperparams["step_size"] * factor
    return (*inner, scaler._replace(hyperparams=hyperparams))
