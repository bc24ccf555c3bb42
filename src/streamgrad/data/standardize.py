"""Causal online standardisation of a stream read in batches.

`Standardizer` gives, batch after batch, exactly the numbers `lob_features.standardize_online`
gives on the whole array (bitwise, however the stream is cut): z_k = clip((x_k - m_{k-1}) /
s_{k-1}, -clip, clip) with the mean and population variance of x_0..x_{k-1}, 0 during the
warm-up and where the past variance is 0. It repeats that function's blocked computation
(blocks of `_STD_BLOCK` samples counted from the start of the stream, cumulative sums within a
block, Chan's merge across blocks), carrying the partial block's sums from one batch to the
next, so that every addition happens in the same order. Its state is a few (F,) arrays,
whatever the stream length, and is what a checkpoint stores (`state` / `restore`).
"""

from __future__ import annotations

import numpy as np

from streamgrad.data.lob_features import _STD_BLOCK

_FIELDS = ("done", "mean_a", "m2_a", "first", "s1", "s2", "last_mean", "last_var")


class Standardizer:
    """Running standardisation of (n, F) batches; see the module docstring."""

    def __init__(self, width: int, *, warmup: int = 10, clip: float = 10.0) -> None:
        self.warmup, self.clip = max(warmup, 2), clip
        zeros = np.zeros(width)
        self.done = np.zeros((), np.int64)  # samples seen: k
        # merged moments of the completed blocks; the current block's first value and sums
        self.mean_a, self.m2_a, self.first, self.s1, self.s2 = (zeros.copy() for _ in range(5))
        self.last_mean, self.last_var = zeros.copy(), zeros.copy()  # moments of x_0..x_{k-1}

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """z (n, F) float64 of the next n samples x (n, F)."""
        x = np.asarray(batch, np.float64)
        means, variances = [self.last_mean[None]], [self.last_var[None]]
        start = 0
        while start < len(x):
            stop = min(len(x), start + _STD_BLOCK - int(self.done) % _STD_BLOCK)
            mean, var = self._extend(x[start:stop])
            means.append(mean)
            variances.append(var)
            start = stop
        mean, var = np.concatenate(means)[:-1], np.concatenate(variances)[:-1]
        self.last_mean, self.last_var = means[-1][-1], variances[-1][-1]
        std = np.sqrt(var)
        z = np.divide(x - mean, std, out=np.zeros_like(x), where=std > 0)
        index = int(self.done) - len(x) + np.arange(len(x))
        z[index < self.warmup] = 0.0
        return np.clip(z, -self.clip, self.clip)

    def _extend(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fold in samples x (m, F) that lie in one block; returns the mean and variance of
        the stream up to and including each of them, (m, F) each."""
        in_block = int(self.done) % _STD_BLOCK
        if in_block == 0:
            self.first, self.s1, self.s2 = x[0], np.zeros_like(x[0]), np.zeros_like(x[0])
        y = x - self.first
        s1 = np.cumsum(np.r_[self.s1[None], y], axis=0)[1:]
        s2 = np.cumsum(np.r_[self.s2[None], y * y], axis=0)[1:]
        n_b = np.arange(in_block + 1, in_block + len(x) + 1, dtype=np.float64)[:, None]
        mean_b = s1 / n_b
        m2_b = np.maximum(s2 - s1 * mean_b, 0.0)
        mean_b = mean_b + self.first
        n_a = int(self.done) - in_block
        n = n_a + n_b
        delta = mean_b - self.mean_a
        mean_ab = self.mean_a + delta * (n_b / n)
        m2_ab = self.m2_a + m2_b + delta * delta * (n_a * n_b / n)
        self.s1, self.s2 = s1[-1], s2[-1]
        self.done = np.asarray(int(self.done) + len(x), np.int64)
        if in_block + len(x) == _STD_BLOCK:
            self.mean_a, self.m2_a = mean_ab[-1], m2_ab[-1]
        return mean_ab, m2_ab / n

    def state(self) -> dict[str, np.ndarray]:
        """The running state, as arrays (for a checkpoint)."""
        return {name: np.asarray(getattr(self, name)) for name in _FIELDS}

    def restore(self, state: dict[str, np.ndarray]) -> Standardizer:
        """Continue from a `state()`."""
        for name in _FIELDS:
            setattr(self, name, np.asarray(state[name]))
        return self
