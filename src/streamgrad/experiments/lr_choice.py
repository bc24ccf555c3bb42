"""What the method comparisons share: the pairs of methods at equal update frequency, and
learning rates set per run on one compiled learner or chosen online by the ensemble.

A fair comparison of RTRL and TBPTT matches how often each applies an update (TBPTT(K) sums K
steps of gradient per update, which allows a larger rate) and gives each method its rate the
same way. `equal_frequency` lists the pairs; `LrEnsemble` and `at_rate` (one of its copies
alone) run a learner built at rate 1 with the rate as a multiplier in the optimizer state
(`optim.with_lr_scale`), so every rate and seed reuses one compiled program.
"""

from __future__ import annotations

from streamgrad.ensemble import EnsembleState, LrEnsemble
from streamgrad.gradients import make_algorithm
from streamgrad.model import Model, ModelParams
from streamgrad.online import LearnerState, OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule, scale_lr


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


def at_rate(ensemble: LrEnsemble, params: ModelParams, lr: float) -> LearnerState:
    """The initial state of one copy of `ensemble` alone (`ensemble.member`, the learner with
    its rate multiplier in its state) running at learning rate `lr`."""
    state = ensemble.member.init(params)
    return state._replace(opt_state=scale_lr(state.opt_state, lr))


def ensemble_choice(lrs: tuple[float, ...], state: EnsembleState) -> dict[str, float]:
    """The rate an ensemble over `lrs` chose most often and the one it chose at the last step."""
    counts = list(map(int, state.counts))
    return {
        "chosen_most": lrs[counts.index(max(counts))],
        "chosen_last": lrs[int(state.chosen)],
    }
