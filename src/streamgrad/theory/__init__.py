"""Theory tools for the papers' network class: estimators of the stationary loss and its
gradient, coupling and window-law diagnostics of (X_k, S_k, J_k), and the infinite-width
(kernel) limits of the shared-coupling network. See docs/theory.md for the equations.
"""

from streamgrad.theory.fixed_point import (
    Coupling,
    WindowLaws,
    contraction_bound,
    coupling,
    window_laws,
)
from streamgrad.theory.kernel_ode import kernel_ode
from streamgrad.theory.limits import HiddenLaw, hidden_law, limit_memory
from streamgrad.theory.ntk import empirical_ntk, limit_ntk
from streamgrad.theory.stationary import (
    Bias,
    StationaryEstimate,
    gradient_bias,
    stationary_loss_and_gradient,
)

__all__ = [
    "Bias",
    "Coupling",
    "HiddenLaw",
    "StationaryEstimate",
    "WindowLaws",
    "contraction_bound",
    "coupling",
    "empirical_ntk",
    "gradient_bias",
    "hidden_law",
    "kernel_ode",
    "limit_memory",
    "limit_ntk",
    "stationary_loss_and_gradient",
    "window_laws",
]
