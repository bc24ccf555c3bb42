"""Ergodic stream processes as objects, for the theory estimators and studies.

A *process* is anything callable as `process(n_steps, *, seed) -> Stream` (the generators
of `data/synthetic.py` qualify through `functools.partial`). The estimators of
`streamgrad.theory` draw one long independent run per estimate from it, so a process must be a
deterministic function of (n_steps, seed). A process that also has
`paths(n_steps, n_paths, *, seed) -> (inputs (P, T, d), targets (P, T))` lets the studies
draw many independent runs in one vectorised pass.

`MarkovModulatedAR`: an AR(1) process whose mean and noise level switch with a hidden Markov
regime r_k in {0, ..., R-1}, with z_k = x_k - mu_{r_k}:

    P(r_{k+1} = r_k) = stay, otherwise a uniformly chosen other regime     (sticky chain)
    z_{k+1} = phi z_k + sigma_{r_{k+1}} e_{k+1},   e_k ~ N(0, 1) i.i.d.
    x_{k+1} = mu_{r_{k+1}} + z_{k+1}
    target "signal" (default):  y_k = mu_{r_{k+1}} + phi z_k = E[x_{k+1} | r_{k+1}, x_0..x_k]
    target "next":              y_k = x_{k+1}

Both targets need memory: the best predictor from the inputs, E[y_k | x_0..x_k] =
sum_r P(r_{k+1} = r | x_0..x_k) mu_r + phi E[z_k | x_0..x_k], needs the posterior of the hidden
regime, a filter of the whole past. With the defaults one observation is weak evidence
(|mu_1 - mu_0| = 2 against a stationary spread sigma / sqrt(1 - phi^2) = 1.7 of z) and a
regime lasts 1 / (1 - stay) = 20 steps on average, so the filter averages over many steps; a
predictor of x_k alone cannot reach its loss. "signal" drops the innovation noise
sigma e_{k+1}, which no predictor can learn, from the target, so gradient estimates are less
noisy. The chain (r_k, z_k) is geometrically ergodic for 0 < stay < 1, |phi| < 1.
Start: r_0 uniform (the stationary law of the chain), z_0 ~ N(0, sigma_{r_0}^2 / (1 - phi^2))
(the exact stationary law when all sigmas are equal; otherwise close to it, and the
estimators' burn-in removes the rest).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
import scipy.signal

from streamgrad.data.dataset import Stream
from streamgrad.errors import UserError

Target = Literal["signal", "next"]
# Steps drawn per generator call: a path is its sequence of pieces of this length, so the path
# of any length is a prefix of the longer ones, whatever piece size a reader asks for.
BLOCK = 65_536


class Process(Protocol):
    """A stream process: a deterministic function of (n_steps, seed)."""

    def __call__(self, n_steps: int, *, seed: int) -> Stream: ...


@dataclass(frozen=True)
class MarkovModulatedAR:
    """Regime-switching AR(1) with one-step-ahead targets (module docstring for the law).

    means, sigmas: one value per regime (R >= 2); phi: the AR coefficient; stay: P[r, r]
    (the rest spread evenly over the other regimes; mean sojourn 1 / (1 - stay) steps).
    """

    means: tuple[float, ...] = (-1.0, 1.0)
    sigmas: tuple[float, ...] = (1.5, 1.5)
    phi: float = 0.5
    stay: float = 0.95
    target: Target = "signal"
    name: ClassVar[str] = "markov-modulated-ar"

    def __post_init__(self) -> None:
        if len(self.means) != len(self.sigmas) or len(self.means) < 2:
            raise UserError(
                "means and sigmas need one value per regime and at least 2 regimes, got "
                f"{len(self.means)} and {len(self.sigmas)}"
            )
        for name, values in (("means", self.means), ("sigmas", self.sigmas), ("phi", self.phi)):
            if not np.all(np.isfinite(values)):
                raise UserError(f"{name} must be finite, got {values}")
        if not abs(self.phi) < 1:
            raise UserError(f"phi must satisfy |phi| < 1, got {self.phi}")
        if not all(sigma > 0 for sigma in self.sigmas):
            raise UserError(f"every sigma must be > 0, got sigmas={self.sigmas}")
        if not 0.0 < self.stay < 1.0:
            raise UserError(f"stay must lie in (0, 1), got {self.stay}")
        if self.target not in ("signal", "next"):
            raise UserError(f"target must be 'signal' or 'next', got {self.target!r}")

    def settings(self) -> dict[str, Any]:
        """The process's name and parameters (for summaries)."""
        return {"name": self.name, **asdict(self), "mean_sojourn": self.mean_sojourn}

    @property
    def n_regimes(self) -> int:
        return len(self.means)

    @property
    def mean_sojourn(self) -> float:
        """Expected number of steps a regime lasts, 1 / (1 - stay)."""
        return 1.0 / (1.0 - self.stay)

    def paths(
        self, n_steps: int, n_paths: int, *, seed: int, first: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """`n_paths` independent runs, the paths first, ..., first + n_paths - 1: inputs
        (P, T, 1) = x_0..x_{T-1}, targets (P, T), float64. Path p comes from its own generator
        seeded by (seed, p), so it does not depend on n_paths or on which other paths are drawn
        with it (a block of paths can be drawn on its own), and `paths(T, 1, seed=s)[0]` is
        `self(T, seed=s)`. A path of length T is the first T steps of the same path at any
        longer length (`blocks`)."""
        return next(self.blocks(n_steps, n_paths, seed=seed, first=first, size=n_steps))

    def blocks(
        self, n_steps: int, n_paths: int, *, seed: int, first: int = 0, size: int = BLOCK
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The runs of `paths`, `size` steps at a time (the last piece may be shorter): inputs
        (P, size, 1) and targets (P, size) per piece, in time order. Memory is O(P x size), so a
        stream longer than memory can be trained on."""
        check_int("n_steps", n_steps, 1)
        check_int("n_paths", n_paths, 1)
        check_int("seed", seed, 0)
        check_int("first", first, 0)
        check_int("size", size, 1)
        return self._pieces(self._draws(n_paths, seed, first), n_steps, size)

    @staticmethod
    def _pieces(
        draws: Iterator[tuple[np.ndarray, ...]], n_steps: int, size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`draws` re-cut into pieces of `size` steps, `n_steps` in all."""
        held, count, left = [], 0, n_steps  # drawn pieces not yet handed out, and their steps
        while left > 0:
            want = min(size, left)
            while count < want:
                held.append(next(draws))
                count += held[-1][0].shape[1]
            x, y = (np.concatenate([piece[i] for piece in held], 1) for i in (0, 1))
            yield x[:, :want, None], y[:, :want]
            held, count, left = [(x[:, want:], y[:, want:])], count - want, left - want

    def _draws(self, n_paths: int, seed: int, first: int) -> Iterator[tuple[np.ndarray, ...]]:
        """Endless (inputs (P, BLOCK), targets (P, BLOCK)) of the paths first.., BLOCK steps
        per piece, each piece continuing the chain (r, z) where the last one ended.

        Vectorised: a regime change is a jump by J ~ Uniform{1..R-1} (mod R), so
        r_k = (r_0 + sum of jumps) mod R, and z is the linear filter
        z_k = phi z_{k-1} + sigma_{r_k} e_k (scipy.signal.lfilter)."""
        means, sigmas, r = np.asarray(self.means), np.asarray(self.sigmas), self.n_regimes
        rngs = [np.random.default_rng([seed, first + p]) for p in range(n_paths)]
        regime = np.array([rng.integers(r) for rng in rngs])  # r_k at the piece's start
        z = np.array([rng.standard_normal() for rng in rngs]) * sigmas[regime]
        z = z / np.sqrt(1 - self.phi**2)
        regimes, noise = np.empty((n_paths, BLOCK), np.int64), np.empty((n_paths, BLOCK))
        while True:
            for p, rng in enumerate(rngs):  # r_{k+1..k+B}, e_{k+1..k+B}
                changes = rng.random(BLOCK) >= self.stay
                jumps = np.where(changes, rng.integers(1, r, size=BLOCK), 0)
                regimes[p] = (regime[p] + np.cumsum(jumps)) % r
                noise[p] = rng.standard_normal(BLOCK)
            z_next, _ = scipy.signal.lfilter(
                [1.0], [1.0, -self.phi], sigmas[regimes] * noise, axis=1, zi=self.phi * z[:, None]
            )
            z_now = np.concatenate([z[:, None], z_next[:, :-1]], 1)  # z_k..z_{k+B-1}
            r_now = np.concatenate([regime[:, None], regimes[:, :-1]], 1)
            inputs = means[r_now] + z_now
            if self.target == "next":
                yield inputs, means[regimes] + z_next
            else:
                yield inputs, means[regimes] + self.phi * z_now
            regime, z = regimes[:, -1].copy(), z_next[:, -1].copy()

    def __call__(self, n_steps: int, *, seed: int) -> Stream:
        inputs, targets = self.paths(n_steps, 1, seed=seed)
        return Stream(
            inputs=inputs[0],
            targets=targets[0],
            input_names=("x",),
            target_name="x_next" if self.target == "next" else "signal_next",
            source=(
                f"markov-modulated-ar(n_steps={n_steps}, means={self.means}, "
                f"sigmas={self.sigmas}, phi={self.phi}, stay={self.stay}, "
                f"target={self.target}, seed={seed})"
            ),
        )


def check_int(name: str, value: object, minimum: int) -> None:
    """Refuse a non-integer or an integer below `minimum` (one-line UserError naming it)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise UserError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise UserError(f"{name} must be >= {minimum}, got {value}")
