"""What the method comparisons share: the pairs of methods at equal update frequency, and
learning rates set per run on one compiled learner or chosen online by the ensemble.

A fair comparison of RTRL and TBPTT matches how often each applies an update (TBPTT(K) sums K
steps of gradient per update, which allows a larger rate) and gives each method its rate the
same way. `equal_frequency` lists the pairs; `at_rate` and `LrEnsemble` run a learner built at
rate 1 with the rate as a multiplier in the optimizer state (`optim.with_lr_scale`), so every
rate and seed reuses one compiled program.
"""

from __future__ import annotations

from typing import Any

from streamgrad.ensemble import LrEnsemble
from streamgrad.gradients import make_algorithm
from streamgrad.model import Model, ModelParams
from streamgrad.online import LearnerState, OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule, scale_lr, with_lr_scale


def equal_frequency(windows: tuple[int, ...]) -> list[tuple[int, str]]:
    """(update interval, algorithm spec) pairs: RTRL beside TBPTT(1, K) (an update every
    step), then for each K RTRL(every K) beside TBPTT(K, K) (an update every K steps)."""
    every_step = [(1, "rtrl"), *((1, f"tbptt:1:{k}") for k in windows)]
    every_k = [pair for k in windows for pair in ((k, f"rtrl:every={k}"), (k, f"tbptt:{k}"))]
    return every_step + every_k


def unit_rate_learner(model: Model, spec: str, optimizer: str) -> OnlineLearner:
    """The learner of `spec` with optimizer `optimizer` at learning rate 1."""
    schedule = make_schedule("constant", 1.0)
    return OnlineLearner(make_algorithm(spec, model), make_optimizer(optimizer, schedule))


def rate_learners(
    learner: OnlineLearner, lrs: tuple[float, ...]
) -> tuple[OnlineLearner, LrEnsemble]:
    """(single, ensemble): `learner` (built at rate 1) with a rate multiplier in its state, to
    be set by `at_rate`, and the online ensemble over `lrs`."""
    return OnlineLearner(learner.algorithm, with_lr_scale(learner.optimizer)), LrEnsemble(
        learner, lrs
    )


def at_rate(single: OnlineLearner, params: ModelParams, lr: float) -> LearnerState:
    """The initial state of `single` (from `rate_learners`) running at learning rate `lr`."""
    state = single.init(params)
    return state._replace(opt_state=scale_lr(state.opt_state, lr))


def ensemble_choice(ensemble: LrEnsemble, state: Any) -> dict[str, float]:
    """The rate an ensemble chose most often and the one it chose at the last step."""
    counts = list(map(int, state.counts))
    return {
        "chosen_most": ensemble.lrs[counts.index(max(counts))],
        "chosen_last": ensemble.lrs[int(state.chosen)],
    }
