"""Causal features and next-mid-move labels from a LOBSTER day.

Features for sample k use only rows 0..k of the book and messages (and the sample's grid
time under clock sampling); `standardize_online` only uses samples before k. Labels are
prediction targets and necessarily look forward; features never do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from streamgrad.data.dataset import Stream
from streamgrad.data.lobster import LobsterDay
from streamgrad.data.lobster_format import PRICE_SCALE
from streamgrad.errors import DataError, UserError

__all__ = [
    "TICK",
    "FeatureFrame",
    "lob_features",
    "lob_labels",
    "lob_stream",
    "ofi",
    "standardize_online",
]

TICK = 0.01
"""Price tick in dollars (NASDAQ stocks above $1)."""

_BP = 1e4  # basis points per unit log return
_N_ONE_HOT = 5  # event types 1..5 get indicator features; 6 (cross) and 7 (halt) get none
_STD_BLOCK = 1024  # block length of the blocked running-moment computation


@dataclass(frozen=True)
class FeatureFrame:
    """T' samples of F features.

    values: (T', F) float64 raw (unstandardised) features, columns named by `names`.
    index: (T',) int64, the event row of the `LobsterDay` each sample is taken at (the
        last event at or before the sample time).
    time: (T',) float64 sample time in seconds after midnight (the event time under
        event sampling, the grid time under clock sampling); None for a book-only day.
    mid: (T',) float64 mid-price in dollars at the sample, (ask_1 + bid_1) / 2.
    """

    values: np.ndarray
    names: tuple[str, ...]
    index: np.ndarray
    time: np.ndarray | None
    mid: np.ndarray

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def take(self, keep: np.ndarray | slice) -> FeatureFrame:
        """The frame restricted to samples `keep` (a slice or an index/bool array)."""
        return FeatureFrame(
            values=self.values[keep],
            names=self.names,
            index=self.index[keep],
            time=None if self.time is None else self.time[keep],
            mid=self.mid[keep],
        )


def ofi(
    ask_price: np.ndarray, ask_size: np.ndarray, bid_price: np.ndarray, bid_size: np.ndarray
) -> np.ndarray:
    """Level-1 order-flow imbalance per event (Cont, Kukanov & Stoikov 2014).

    Inputs are (T,) level-1 prices and sizes. For k >= 1, with P^b, q^b the best bid
    price and size and P^a, q^a the best ask:

        e_k = 1{P^b_k >= P^b_{k-1}} q^b_k - 1{P^b_k <= P^b_{k-1}} q^b_{k-1}
            - 1{P^a_k <= P^a_{k-1}} q^a_k + 1{P^a_k >= P^a_{k-1}} q^a_{k-1}

    and e_0 = 0 (no earlier book). Returns e (T,) float64, in shares.
    """
    e = np.zeros(ask_price.shape[0])
    pb, pb0, qb, qb0 = bid_price[1:], bid_price[:-1], bid_size[1:], bid_size[:-1]
    pa, pa0, qa, qa0 = ask_price[1:], ask_price[:-1], ask_size[1:], ask_size[:-1]
    e[1:] = (pb >= pb0) * qb - (pb <= pb0) * qb0 - (pa <= pa0) * qa + (pa >= pa0) * qa0
    return e


def lob_features(
    day: LobsterDay,
    *,
    sampling: Literal["event", "clock"] = "event",
    dt: float = 1.0,
    levels: int | None = None,
) -> FeatureFrame:
    """Causal features of a LOBSTER day, one row per sample.

    Sampling: ``"event"`` takes one sample per event (T' = T, index k = k). ``"clock"``
    takes one sample at each grid time g_j = t0 + j*dt, t0 = ceil(time_0 / dt) * dt, up to
    the last event time, at the book after the last event with time <= g_j (needs the
    message file). Flow features sum over the events since the previous sample (for
    the first clock sample, all events up to g_0); under event sampling that is the
    sample's own event.

    Features, in column order (L = `levels`, default all levels of the day):

    * ``spread_usd``: ask_1 - bid_1 in dollars; ``spread_ticks``: the same in $0.01 ticks.
    * ``imbalance_i`` for i = 1..L: (bid_size_i - ask_size_i) / (bid_size_i + ask_size_i),
      0 when both are 0 (empty levels).
    * ``mid_return_bp``: 1e4 * log(mid_j / mid_{j-1}) since the previous sample, 0 for
      the first.
    * ``ofi_1``: level-1 order-flow imbalance (`ofi`), summed over the interval.

    With messages, also:

    * ``event_type_1`` .. ``event_type_5``: number of events of each type in the interval
      (a one-hot under event sampling).
    * ``signed_volume``: sign(V) log1p(|V|) with V the sum over executions (types 4, 5)
      in the interval of -direction * size (executing a sell limit order, direction -1,
      is a buyer-initiated trade, counted +).
    * ``log_time_since_event``: log1p of seconds since the previous event: t_k - t_{k-1}
      under event sampling (0 for k = 0), g_j - t_index under clock sampling.

    Rows whose level-1 bid or ask is empty (no mid-price) are a `DataError`.
    """
    levels = day.n_levels if levels is None else levels
    ask_units, bid_units = _level_one_units(day, levels)
    index, sample_time = _samples(day, sampling, dt)
    mid = ((ask_units + bid_units) / (2 * PRICE_SCALE))[index]
    features = _book_features(day, index, levels, (ask_units - bid_units)[index], mid)
    if day.has_messages:
        features |= _message_features(day, index, sample_time, sampling)
    return FeatureFrame(
        values=np.column_stack(list(features.values())),
        names=tuple(features),
        index=index,
        time=None if sample_time is None else np.asarray(sample_time, dtype=np.float64),
        mid=mid,
    )


def _level_one_units(day: LobsterDay, levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Level-1 ask and bid prices (T,) in units of 1e-4 dollars, snapped to that grid so
    that equal books give bit-identical mids and spreads. Checks the day has rows, that
    `levels` fits it and that level 1 is never empty on either side."""
    if len(day) == 0:
        raise DataError("the LOBSTER day has no rows", file=day.orderbook_file)
    if not 1 <= levels <= day.n_levels:
        raise UserError(f"levels must be in 1..{day.n_levels} for this day, got {levels}")
    ask, bid = day.ask_price[:, 0], day.bid_price[:, 0]
    one_sided = np.isnan(ask) | np.isnan(bid)
    if one_sided.any():
        row = int(np.argmax(one_sided))
        raise DataError(
            "level 1 is empty on one side; features need a mid-price",
            file=day.orderbook_file,
            row=int(day.lines[row]),
            column="ask_price_1" if np.isnan(ask[row]) else "bid_price_1",
        )
    return np.rint(ask * PRICE_SCALE), np.rint(bid * PRICE_SCALE)


def _book_features(
    day: LobsterDay, index: np.ndarray, levels: int, spread_units: np.ndarray, mid: np.ndarray
) -> dict[str, np.ndarray]:
    """The book feature columns (T',) by name, in column order, from the samples' spread
    (1e-4 $ units) and mid-price: spread in dollars and ticks, `levels` imbalances, mid
    return, level-1 OFI."""
    spread_ticks = spread_units / (TICK * PRICE_SCALE)
    ask_size, bid_size = day.ask_size[index, :levels], day.bid_size[index, :levels]
    depth = ask_size + bid_size
    imbalance = np.divide(bid_size - ask_size, depth, out=np.zeros_like(depth), where=depth > 0)
    mid_return = np.zeros(index.size)
    mid_return[1:] = _BP * np.log(mid[1:] / mid[:-1])
    flow = ofi(day.ask_price[:, 0], day.ask_size[:, 0], day.bid_price[:, 0], day.bid_size[:, 0])
    return {
        "spread_usd": spread_ticks * TICK,
        "spread_ticks": spread_ticks,
        **{f"imbalance_{i + 1}": column for i, column in enumerate(imbalance.T)},
        "mid_return_bp": mid_return,
        "ofi_1": _interval_sum(flow, index),
    }


def _samples(
    day: LobsterDay, sampling: Literal["event", "clock"], dt: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """(index, sample_time): the event row (T',) int64 of each sample and its time (T',)
    (None for a book-only day under event sampling); see `lob_features`."""
    if sampling == "event":
        index = np.arange(len(day), dtype=np.int64)
        sample_time = day.time
    elif sampling == "clock":
        if day.time is None:
            raise UserError("clock sampling needs event times: read the message file too")
        if not (np.isfinite(dt) and dt > 0):
            raise UserError(f"dt must be a positive number of seconds, got {dt}")
        t0 = np.ceil(day.time[0] / dt) * dt
        if t0 < day.time[0]:  # rounding in the division
            t0 += dt
        sample_time = t0 + dt * np.arange(int(np.floor((day.time[-1] - t0) / dt)) + 1)
        index = np.searchsorted(day.time, sample_time, side="right").astype(np.int64) - 1
    else:
        raise UserError(f"sampling must be 'event' or 'clock', got {sampling!r}")
    if index.size == 0:
        raise DataError("no clock sample fits in the day; use a smaller dt", file=day.message_file)
    return index, sample_time


def _interval_sum(flow: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(T, ...) per-event flow -> (T', ...) sums over the events of each sample's interval
    (the events after the previous sample's event `index`, up to and including its own)."""
    total = np.cumsum(flow, axis=0)[index]
    total[1:] -= total[:-1].copy()
    return total


def _message_features(
    day: LobsterDay, index: np.ndarray, sample_time: np.ndarray, sampling: str
) -> dict[str, np.ndarray]:
    """The message-file feature columns (T',) by name, in column order: event-type counts
    1.._N_ONE_HOT, the signed executed volume and log1p of the time since the previous
    event."""
    types = day.event_type[:, None] == np.arange(1, _N_ONE_HOT + 1)
    executed = (day.event_type == 4) | (day.event_type == 5)
    volume = _interval_sum(np.where(executed, -day.direction * day.size, 0.0), index)
    if sampling == "event":
        since = np.zeros(len(day))
        since[1:] = np.diff(day.time)
    else:
        since = sample_time - day.time[index]
    counts = _interval_sum(types.astype(np.float64), index)
    return {
        **{f"event_type_{i + 1}": column for i, column in enumerate(counts.T)},
        "signed_volume": np.sign(volume) * np.log1p(np.abs(volume)),
        "log_time_since_event": np.log1p(since),
    }


def _past_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population variance of x[:k] for every k = 0..T-1 (both 0 at k = 0).

    x: (T, F). Exact running moments in the Welford/Chan sense, vectorised: within
    blocks of `_STD_BLOCK` samples the moments come from cumulative sums of x minus the
    block's first value (so no large offset cancels), and blocks are merged with Chan's
    parallel update
        mean = mean_a + delta n_b / n,  M2 = M2_a + M2_b + delta^2 n_a n_b / n,
    delta = mean_b - mean_a, n = n_a + n_b. The moments of x[:k] depend on x[:k] only.
    """
    t, f = x.shape
    mean, var = np.zeros((t, f)), np.zeros((t, f))
    n_a, mean_a, m2_a = 0, np.zeros(f), np.zeros(f)
    for start in range(0, t, _STD_BLOCK):
        block = x[start : start + _STD_BLOCK]
        y = block - block[0]
        n_b = np.arange(1, block.shape[0] + 1, dtype=np.float64)[:, None]
        s1, s2 = np.cumsum(y, axis=0), np.cumsum(y * y, axis=0)
        mean_b = s1 / n_b
        m2_b = np.maximum(s2 - s1 * mean_b, 0.0)
        mean_b = mean_b + block[0]
        n = n_a + n_b
        delta = mean_b - mean_a
        mean_ab = mean_a + delta * (n_b / n)
        m2_ab = m2_a + m2_b + delta * delta * (n_a * n_b / n)
        # Moments of x[:start + i + 1] normalise sample start + i + 1.
        stop = min(start + block.shape[0] + 1, t)
        mean[start + 1 : stop] = mean_ab[: stop - start - 1]
        var[start + 1 : stop] = m2_ab[: stop - start - 1] / n[: stop - start - 1]
        n_a, mean_a, m2_a = n_a + block.shape[0], mean_ab[-1], m2_ab[-1]
    return mean, var


def standardize_online(values: np.ndarray, *, warmup: int = 10, clip: float = 10.0) -> np.ndarray:
    """Causally standardise each column with running moments of the strictly past samples.

    values: (T, F). Returns z (T, F) float64 with

        z_k = clip((x_k - m_{k-1}) / s_{k-1}, -clip, clip),

    m_{k-1} and s_{k-1}^2 the mean and population variance of x_0..x_{k-1} (Welford
    moments, see `_past_moments`). Strictly past, rather than past-and-current: both
    are causal, but excluding x_k makes z_k a genuine out-of-sample z-score whose
    normaliser does not depend on the value being normalised (with x_k included, a
    jump is partly absorbed by its own normaliser, and |z_k| <= sqrt(k) always).
    z_k = 0 during the warm-up (k < `warmup`, at least the first 2 samples, which have
    no variance estimate) and wherever the past variance is 0 (a constant column).
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"values must be (T, F), got shape {x.shape}")
    mean, var = _past_moments(x)
    std = np.sqrt(var)
    z = np.divide(x - mean, std, out=np.zeros_like(x), where=std > 0)
    z[: max(warmup, 2)] = 0.0
    return np.clip(z, -clip, clip)


def lob_labels(
    frame: FeatureFrame, *, horizon: int = 1, classes: Literal[2, 3] = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Direction of the next mid-price move after each sample (the prediction target).

    classes=2: label_k = 1 if mid_j > mid_k else 0 (0 = down, 1 = up), j the first
        sample after k with mid_j != mid_k; mask_k is False when the mid never changes
        again before the end (a trailing run). `horizon` must be 1.
    classes=3: label_k = 0 / 1 / 2 for mid_{k+h} - mid_k < 0 / == 0 / > 0 (down,
        unchanged, up), h = `horizon`; mask_k is False for the last h samples.

    Returns labels (T',) int64 (0 where masked) and mask (T',) bool.
    """
    if horizon < 1:
        raise UserError(f"horizon must be at least 1, got {horizon}")
    mid = frame.mid
    n = mid.shape[0]
    labels = np.zeros(n, dtype=np.int64)
    mask = np.zeros(n, dtype=bool)
    if classes == 2:
        if horizon != 1:
            raise UserError("horizon applies to 3-class labels; 2-class labels use the next move")
        changes = np.flatnonzero(mid[1:] != mid[:-1]) + 1  # samples where a new mid starts
        nxt = np.searchsorted(changes, np.arange(n), side="right")
        mask = nxt < changes.size
        labels[mask] = mid[changes[nxt[mask]]] > mid[mask]
    elif classes == 3:
        if n > horizon:
            diff = mid[horizon:] - mid[:-horizon]
            labels[:-horizon] = np.sign(diff).astype(np.int64) + 1
            mask[:-horizon] = True
    else:
        raise UserError(f"classes must be 2 or 3, got {classes}")
    return labels, mask


def lob_stream(
    day: LobsterDay,
    *,
    sampling: Literal["event", "clock"] = "event",
    dt: float = 1.0,
    classes: Literal[2, 3] = 2,
    horizon: int = 1,
    levels: int | None = None,
    warmup: int = 10,
) -> tuple[Stream, FeatureFrame]:
    """Standardised features and next-move labels of a LOBSTER day as a `Stream`.

    Computes `lob_features`, `standardize_online` (over all samples, so the kept ones
    are unaffected by the dropped ones) and `lob_labels`, and drops the unlabelled
    samples, which are all at the end. Returns the `Stream` (inputs (T'', F),
    targets (T'',) int64 classes, target_name "direction") and the `FeatureFrame` of the
    kept samples with raw feature values (for reports: time, mid-price).
    """
    frame = lob_features(day, sampling=sampling, dt=dt, levels=levels)
    inputs = standardize_online(frame.values, warmup=warmup)
    labels, mask = lob_labels(frame, horizon=horizon, classes=classes)
    n_keep = int(np.flatnonzero(mask)[-1]) + 1 if mask.any() else 0
    assert mask[:n_keep].all(), "unlabelled samples before the end of the stream"
    if n_keep == 0:
        raise DataError(
            "no sample has a label (the mid-price never moves)", file=day.orderbook_file
        )
    source = (
        day.orderbook_file
        if day.message_file is None
        else f"{day.message_file} + {day.orderbook_file}"
    )
    stream = Stream(
        inputs=inputs[:n_keep],
        targets=labels[:n_keep],
        input_names=frame.names,
        target_name="direction",
        n_classes=classes,
        source=source,
        skipped_rows=day.skipped_rows,
    )
    return stream, frame.take(slice(0, n_keep))
