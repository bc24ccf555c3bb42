"""Tests of LOB features, online standardisation and next-move labels."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from streamgrad.data.dataset import Stream
from streamgrad.data.lob_features import (
    FeatureFrame,
    lob_features,
    lob_labels,
    lob_stream,
    ofi,
    standardize_online,
)
from streamgrad.data.lobster import LobsterDay, read_lobster
from streamgrad.errors import DataError, UserError

_NAME = "AMZN_2012-06-21_34200000_57600000_{}_1.csv"
_CANDIDATES = (
    Path(__file__).resolve().parents[1] / "shared" / "data" / "lobster",
    Path("/work/shared/data/lobster"),
)
DATA = next((d for d in _CANDIDATES if (d / _NAME.format("message")).is_file()), None)
needs_data = pytest.mark.skipif(DATA is None, reason="LOBSTER sample files not found")

BOOK_FIELDS = ("ask_price", "ask_size", "bid_price", "bid_size")
MESSAGE_FIELDS = ("time", "event_type", "order_id", "size", "price", "direction")


@pytest.fixture(scope="module")
def amzn() -> LobsterDay:
    assert DATA is not None
    return read_lobster(DATA / _NAME.format("orderbook"), DATA / _NAME.format("message"))


def head(day: LobsterDay, n: int) -> LobsterDay:
    """The first n rows of a day."""
    fields = {f: getattr(day, f) for f in (*BOOK_FIELDS, *MESSAGE_FIELDS, "lines")}
    return dataclasses.replace(day, **{f: None if a is None else a[:n] for f, a in fields.items()})


def random_rows(rng: np.random.Generator, n: int, start_time: float) -> dict[str, np.ndarray]:
    """n random valid 1-level rows: prices on the cent grid, ask > bid, times >= start."""
    bid = rng.integers(22_000, 22_600, n) * 100
    ask = bid + 100 * rng.integers(1, 8, n)
    return {
        "ask_price": (ask / 1e4)[:, None],
        "ask_size": rng.integers(1, 1000, n).astype(float)[:, None],
        "bid_price": (bid / 1e4)[:, None],
        "bid_size": rng.integers(1, 1000, n).astype(float)[:, None],
        "time": start_time + np.cumsum(rng.exponential(0.5, n)),
        "event_type": rng.integers(1, 6, n),
        "order_id": rng.integers(0, 10**8, n),
        "size": rng.integers(1, 500, n).astype(float),
        "price": bid / 1e4,
        "direction": rng.choice([-1, 1], n),
    }


def random_day(seed: int, n: int = 400) -> LobsterDay:
    """A valid synthetic 1-level day whose mid moves often, with repeated books."""
    rng = np.random.default_rng(seed)
    rows = random_rows(rng, n, 34_200.0)
    repeat = rng.random(n) < 0.4  # keep the previous book on some events
    for f in BOOK_FIELDS:
        for k in np.flatnonzero(repeat[1:]) + 1:
            rows[f][k] = rows[f][k - 1]
    return LobsterDay(
        **rows,
        lines=np.arange(1, n + 1),
        n_levels=1,
        orderbook_file="synthetic_orderbook.csv",
        message_file="synthetic_message.csv",
    )


def perturb_after(day: LobsterDay, m: int, seed: int) -> LobsterDay:
    """Replace every row after m with random valid rows (times >= time[m])."""
    rng = np.random.default_rng(seed)
    new = random_rows(rng, len(day) - m - 1, float(day.time[m]))
    new["time"] = new["time"] - new["time"][0] + day.time[m]  # the first may equal time[m]
    changed = {f: np.concatenate([getattr(day, f)[: m + 1], new[f]]) for f in new}
    return dataclasses.replace(day, **changed)


def bits(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


# --- features on the real day -------------------------------------------------------------


@needs_data
def test_real_day_features(amzn: LobsterDay) -> None:
    frame = lob_features(amzn)
    assert frame.names == (
        "spread_usd",
        "spread_ticks",
        "imbalance_1",
        "mid_return_bp",
        "ofi_1",
        "event_type_1",
        "event_type_2",
        "event_type_3",
        "event_type_4",
        "event_type_5",
        "signed_volume",
        "log_time_since_event",
    )
    assert frame.values.shape == (57_515, 12) and np.all(np.isfinite(frame.values))
    np.testing.assert_array_equal(frame.index, np.arange(57_515))
    spread = frame.values[:, 1]
    assert spread.min() == 1 and spread.max() == 77 and np.all(spread == np.rint(spread))
    assert frame.mid.min() == 220.52 and frame.mid.max() == 226.025
    counts = frame.values[:, 5:10].sum(axis=0)
    np.testing.assert_array_equal(counts, [27_845, 16, 18_235, 8_974, 2_445])
    # The first event is a hidden execution of a sell order (direction -1) of 1 share.
    assert frame.values[0, 10] == np.log1p(1.0)


@needs_data
def test_next_event_mid_moves_match_readme(amzn: LobsterDay) -> None:
    labels, mask = lob_labels(lob_features(amzn), horizon=1, classes=3)
    assert mask.sum() == 57_514 and not mask[-1]
    assert np.bincount(labels[mask]).tolist() == [13_877, 29_957, 13_680]  # down, same, up


@needs_data
@pytest.mark.parametrize("seed", [0, 1])
def test_features_are_causal_on_real_day(amzn: LobsterDay, seed: int) -> None:
    day = head(amzn, 5000)
    m = 2500 + 300 * seed
    other = perturb_after(day, m, seed)
    assert not np.array_equal(day.time[m + 1 :], other.time[m + 1 :])
    a, b = lob_features(day), lob_features(other)
    for field in ("values", "index", "time", "mid"):
        assert bits(getattr(a, field)[: m + 1]) == bits(getattr(b, field)[: m + 1])
    assert bits(standardize_online(a.values)[: m + 1]) == bits(
        standardize_online(b.values)[: m + 1]
    )
    assert bits(lob_stream(day)[0].inputs[: m + 1]) == bits(lob_stream(other)[0].inputs[: m + 1])
    # Clock sampling: grid samples before the first perturbed event are unchanged.
    ca = lob_features(day, sampling="clock", dt=1.0)
    cb = lob_features(other, sampling="clock", dt=1.0)
    j = int(np.searchsorted(ca.time, min(day.time[m + 1], other.time[m + 1])))
    assert j > 100
    assert bits(ca.values[:j]) == bits(cb.values[:j])
    assert bits(standardize_online(ca.values)[:j]) == bits(standardize_online(cb.values)[:j])


@needs_data
def test_clock_sampling_aggregates_events(amzn: LobsterDay) -> None:
    day = head(amzn, 3000)
    dt = 2.5
    clock = lob_features(day, sampling="clock", dt=dt)
    event = lob_features(day)
    assert clock.names == event.names
    assert clock.time[0] == np.ceil(day.time[0] / dt) * dt
    np.testing.assert_allclose(np.diff(clock.time), dt)
    col = {name: i for i, name in enumerate(clock.names)}
    executed = np.isin(day.event_type, [4, 5])
    trades = np.where(executed, -day.direction * day.size, 0.0)
    prev = -1
    for j, g in enumerate(clock.time):
        k = int(np.flatnonzero(day.time <= g)[-1])
        assert clock.index[j] == k and clock.mid[j] == event.mid[k]
        events = slice(prev + 1, k + 1)
        assert clock.values[j, col["ofi_1"]] == event.values[events, col["ofi_1"]].sum()
        for t in range(1, 6):
            n_t = np.sum(day.event_type[events] == t)
            assert clock.values[j, col[f"event_type_{t}"]] == n_t
        v = trades[events].sum()
        assert clock.values[j, col["signed_volume"]] == np.sign(v) * np.log1p(abs(v))
        assert clock.values[j, col["log_time_since_event"]] == np.log1p(g - day.time[k])
        expected_return = 0.0 if j == 0 else 1e4 * np.log(clock.mid[j] / clock.mid[j - 1])
        assert clock.values[j, col["mid_return_bp"]] == pytest.approx(expected_return, abs=1e-12)
        prev = k


@needs_data
def test_book_only_features(amzn: LobsterDay) -> None:
    day = dataclasses.replace(head(amzn, 500), **dict.fromkeys(MESSAGE_FIELDS))
    frame = lob_features(day)
    assert frame.names == ("spread_usd", "spread_ticks", "imbalance_1", "mid_return_bp", "ofi_1")
    assert frame.time is None
    stream, kept = lob_stream(day)
    assert stream.input_dim == 5 and kept.time is None
    with pytest.raises(UserError, match="clock sampling needs event times"):
        lob_features(day, sampling="clock")


@needs_data
def test_lob_stream_on_real_day(amzn: LobsterDay) -> None:
    stream, frame = lob_stream(amzn)
    assert isinstance(stream, Stream) and isinstance(frame, FeatureFrame)
    assert stream.n_classes == 2 and stream.target_name == "direction"
    assert len(stream) == len(frame) and stream.input_names == frame.names
    assert len(stream) < len(amzn) and np.all(np.abs(stream.inputs) <= 10)
    last_change = np.flatnonzero(np.diff(lob_features(amzn).mid))[-1]
    assert len(stream) == last_change + 1  # samples after the last mid change have no label
    assert set(np.unique(stream.targets)) == {0, 1}
    three, frame3 = lob_stream(amzn, sampling="clock", dt=5.0, classes=3, horizon=2)
    assert (
        three.n_classes == 3
        and len(frame3) == len(lob_features(amzn, sampling="clock", dt=5.0)) - 2
    )


# --- synthetic checks ----------------------------------------------------------------------


def ofi_loop(pa: np.ndarray, qa: np.ndarray, pb: np.ndarray, qb: np.ndarray) -> np.ndarray:
    """Cont, Kukanov & Stoikov (2014) level-1 OFI, event by event."""
    e = np.zeros(len(pa))
    for k in range(1, len(pa)):
        bid = (qb[k] if pb[k] >= pb[k - 1] else 0.0) - (qb[k - 1] if pb[k] <= pb[k - 1] else 0.0)
        ask = (qa[k] if pa[k] <= pa[k - 1] else 0.0) - (qa[k - 1] if pa[k] >= pa[k - 1] else 0.0)
        e[k] = bid - ask
    return e


@pytest.mark.parametrize("seed", range(5))
def test_ofi_matches_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    bid = 100.0 + rng.integers(0, 3, n) * 0.01  # few prices, so ties are common
    ask = bid + rng.integers(1, 3, n) * 0.01
    qa, qb = rng.integers(0, 50, n).astype(float), rng.integers(0, 50, n).astype(float)
    np.testing.assert_array_equal(ofi(ask, qa, bid, qb), ofi_loop(ask, qa, bid, qb))


def welford_loop(x: np.ndarray, warmup: int, clip: float) -> np.ndarray:
    """Reference: z_k from Welford moments of x_0..x_{k-1}, one sample at a time."""
    z = np.zeros_like(x)
    for j in range(x.shape[1]):
        mean, m2 = 0.0, 0.0
        for k, value in enumerate(x[:, j]):
            if k >= max(warmup, 2) and m2 > 0:
                z[k, j] = np.clip((value - mean) / np.sqrt(m2 / k), -clip, clip)
            delta = value - mean
            mean += delta / (k + 1)
            m2 += delta * (value - mean)
    return z


@pytest.mark.parametrize("warmup", [0, 10, 50])
def test_standardize_online_matches_welford_loop(warmup: int) -> None:
    rng = np.random.default_rng(warmup)
    t = 3000  # crosses several blocks of the vectorised computation
    cols = [
        rng.normal(size=t),
        1e6 + 1e-2 * rng.normal(size=t),  # large offset, small spread
        np.full(t, 7.0),  # constant: never standardised
        np.r_[np.full(100, 3.0), rng.standard_t(2, t - 100)],  # constant, then heavy tails
        np.cumsum(rng.integers(-3, 4, t)).astype(float),  # random walk
        (rng.random(t) < 0.01).astype(float),  # rare events
    ]
    x = np.column_stack(cols)
    z = standardize_online(x, warmup=warmup, clip=10.0)
    ref = welford_loop(x, warmup, 10.0)
    np.testing.assert_allclose(z, ref, rtol=0, atol=1e-6)
    assert np.all(z[: max(warmup, 2)] == 0) and np.all(z[:, 2] == 0) and np.all(z[:101, 3] == 0)
    assert np.abs(z).max() == 10.0


def test_standardize_online_is_strictly_past() -> None:
    x = np.array([[1.0], [3.0], [5.0], [100.0]])
    z = standardize_online(x, warmup=0)
    assert z[2, 0] == (5.0 - 2.0) / 1.0  # mean 2, std 1 of {1, 3}
    assert z[3, 0] == 10.0  # clipped; its own value is not in its normaliser
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        standardize_online(np.zeros(5))


@pytest.mark.parametrize("seed", range(3))
def test_synthetic_features_are_causal(seed: int) -> None:
    day = random_day(seed)
    m = 150 + 40 * seed
    other = perturb_after(day, m, seed + 100)
    for sampling in ("event", "clock"):
        a = lob_features(day, sampling=sampling, dt=0.7)
        b = lob_features(other, sampling=sampling, dt=0.7)
        j = m + 1 if sampling == "event" else int(np.searchsorted(a.time, other.time[m + 1]))
        assert j > 10
        assert bits(a.values[:j]) == bits(b.values[:j])
        assert bits(standardize_online(a.values)[:j]) == bits(standardize_online(b.values)[:j])


def labels_loop(mid: np.ndarray) -> tuple[list[int], list[bool]]:
    labels, mask = [], []
    for k in range(len(mid)):
        future = [m for m in mid[k + 1 :] if m != mid[k]]
        labels.append(int(future[0] > mid[k]) if future else 0)
        mask.append(bool(future))
    return labels, mask


@pytest.mark.parametrize("seed", range(3))
def test_labels_match_loops(seed: int) -> None:
    frame = lob_features(random_day(seed, n=300))
    mid = frame.mid.copy()
    mid[-21] = mid[-22] + 0.005
    mid[-20:] = mid[-21]  # a flat tail: no next move
    frame = dataclasses.replace(frame, mid=mid)
    labels, mask = lob_labels(frame)
    ref_labels, ref_mask = labels_loop(mid)
    assert labels.tolist() == ref_labels and mask.tolist() == ref_mask
    assert mask[:-21].all() and not mask[-21:].any()  # a run of 21 equal mids
    for h in (1, 4):
        labels3, mask3 = lob_labels(frame, classes=3, horizon=h)
        assert mask3[:-h].all() and not mask3[-h:].any()
        expected = [int(np.sign(mid[k + h] - mid[k])) + 1 for k in range(len(mid) - h)]
        assert labels3[:-h].tolist() == expected


def test_lob_stream_and_errors() -> None:
    day = random_day(7)
    stream, frame = lob_stream(day, classes=3, horizon=3, warmup=5)
    assert len(stream) == len(day) - 3 and stream.n_classes == 3
    full = lob_features(day)
    np.testing.assert_array_equal(stream.targets, lob_labels(full, classes=3, horizon=3)[0][:-3])
    np.testing.assert_array_equal(frame.index, np.arange(len(day) - 3))
    np.testing.assert_array_equal(frame.values, full.values[:-3])
    np.testing.assert_array_equal(stream.inputs, standardize_online(full.values, warmup=5)[:-3])
    assert stream.source == "synthetic_message.csv + synthetic_orderbook.csv"
    with pytest.raises(UserError, match="horizon applies to 3-class"):
        lob_labels(frame, horizon=2)
    with pytest.raises(UserError, match="horizon must be at least 1"):
        lob_labels(frame, horizon=0, classes=3)
    with pytest.raises(UserError, match="classes must be 2 or 3"):
        lob_labels(frame, classes=4)  # type: ignore[arg-type]
    with pytest.raises(UserError, match="sampling must be"):
        lob_features(day, sampling="tick")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="dt must be a positive"):
        lob_features(day, sampling="clock", dt=0.0)
    with pytest.raises(UserError, match=r"levels must be in 1\.\.1"):
        lob_features(day, levels=2)
    flat = dataclasses.replace(
        day, **{f: np.repeat(getattr(day, f)[:1], len(day), axis=0) for f in BOOK_FIELDS}
    )
    with pytest.raises(DataError, match="mid-price never moves"):
        lob_stream(flat)


def test_empty_level_one_is_reported() -> None:
    day = random_day(3)
    ask = day.ask_price.copy()
    ask[17, 0] = np.nan
    with pytest.raises(DataError, match=r"row 18, column 'ask_price_1'.*mid-price"):
        lob_features(dataclasses.replace(day, ask_price=ask))


def test_multi_level_imbalance(tmp_path: Path) -> None:
    rows = [
        "2239500,100,2238100,300,2239600,50,-9999999999,0",
        "2239500,100,2238100,100,9999999999,0,-9999999999,0",
    ]
    ob = tmp_path / "ob.csv"
    ob.write_text("\n".join(rows) + "\n")
    frame = lob_features(read_lobster(ob))
    assert frame.names[2:4] == ("imbalance_1", "imbalance_2")
    np.testing.assert_array_equal(frame.values[:, 2:4], [[0.5, -1.0], [0.0, 0.0]])
    assert lob_features(read_lobster(ob), levels=1).names[2:4] == ("imbalance_1", "mid_return_bp")
