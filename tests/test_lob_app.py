"""The LOB application: outputs, honest baselines, and no look-ahead."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from streamgrad import baselines
from streamgrad.cli import main
from streamgrad.experiments import lob

DATA = Path(str(files("streamgrad.resources").joinpath("lobster")))  # the bundled day, gzipped
ORDERBOOK = DATA / "AMZN_2012-06-21_34200000_57600000_orderbook_1.csv.gz"
MESSAGE = DATA / "AMZN_2012-06-21_34200000_57600000_message_1.csv.gz"


def write_day(folder: Path, book: np.ndarray, messages: np.ndarray) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ob, msg = folder / "orderbook.csv", folder / "message.csv"
    np.savetxt(ob, book, fmt="%d", delimiter=",")
    np.savetxt(msg, messages, fmt=["%.9f", "%d", "%d", "%d", "%d", "%d"], delimiter=",")
    return ob, msg


def prefix(rows: int) -> tuple[np.ndarray, np.ndarray]:
    book = np.loadtxt(ORDERBOOK, delimiter=",", skiprows=1, max_rows=rows, dtype=np.int64)
    messages = np.loadtxt(MESSAGE, delimiter=",", max_rows=rows)
    return book, messages


def small_run(out: Path, ob: Path, msg: Path) -> pd.DataFrame:
    out.mkdir()
    lob.run(out, orderbook=ob, message=msg, algorithms=("rtrl", "tbptt:5"), hidden=6)
    return pd.read_parquet(out / "predictions.parquet")


def test_future_rows_cannot_change_past_predictions(tmp_path: Path) -> None:
    book, messages = prefix(3_000)
    m = 2_000
    original = small_run(tmp_path / "a", *write_day(tmp_path / "day_a", book, messages))
    # Replace every row after m with rows from later in the day (valid books, times shifted).
    later_book, later_messages = prefix(40_000)
    book2, messages2 = book.copy(), messages.copy()
    book2[m + 1 :] = later_book[30_000 : 30_000 + len(book) - m - 1]
    source = later_messages[30_000 : 30_000 + len(book) - m - 1].copy()
    source[:, 0] = messages[m, 0] + (source[:, 0] - source[0, 0]) + 0.5
    messages2[m + 1 :] = source
    changed = small_run(tmp_path / "b", *write_day(tmp_path / "day_b", book2, messages2))
    probability_columns = [c for c in original.columns if c.startswith("p_up[")]
    assert len(probability_columns) == 5
    before = original.iloc[: m + 1]
    after = changed.iloc[: m + 1]
    for column in probability_columns:
        np.testing.assert_array_equal(
            before[column].to_numpy(), after[column].to_numpy(), err_msg=column
        )
    # ...while the perturbation did reach the later predictions
    assert not np.array_equal(
        original["p_up[elman rtrl]"].to_numpy()[m + 50 :],
        changed["p_up[elman rtrl]"].to_numpy()[m + 50 :],
    )


def test_revealed_targets_only_where_the_next_sample_moves() -> None:
    mid = np.array([1.0, 1.0, 2.0, 2.0, 2.0, 1.0])
    labels = np.array([1, 1, 0, 0, 0])
    targets = lob.revealed_targets(labels, mid[:5], classes=2)
    np.testing.assert_array_equal(targets, [-1, 1, -1, -1, -1])
    np.testing.assert_array_equal(lob.revealed_targets(labels, mid[:5], classes=3), labels)


def test_majority_baseline_uses_only_revealed_past_labels() -> None:
    targets = np.array([-1, 1, 1, -1, 0])
    probs = np.exp(baselines.prequential(baselines.MajorityClass(2), targets, targets))
    np.testing.assert_allclose(probs[0], [0.5, 0.5])
    np.testing.assert_allclose(probs[2], [1 / 3, 2 / 3])  # after one revealed "up"
    np.testing.assert_allclose(probs[4], [1 / 4, 3 / 4])


def previous_move_guesses(mid: np.ndarray, n_classes: int) -> list[int]:
    """The previous-move baseline's guess at each sample, no label revealed."""
    learner = baselines.PreviousMove(n_classes)
    guesses = []
    for value in mid:
        guesses.append(learner.guess(value))
        learner.learn_one(value, -1)
    return guesses


def test_previous_move_baseline_follows_the_last_mid_change() -> None:
    mid = np.array([1.0, 2.0, 2.0, 1.0, 1.0])
    np.testing.assert_array_equal(previous_move_guesses(mid, 2), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(previous_move_guesses(mid, 3), [1, 2, 1, 0, 1])
    # confidence is the running hit rate on revealed labels: 2 hits of 2 -> 3/4
    targets = np.array([1, 1, -1, -1, -1])
    probs = np.exp(baselines.prequential(baselines.PreviousMove(2), mid, targets))
    np.testing.assert_allclose(probs[2], [1 / 4, 3 / 4])


@pytest.mark.slow
def test_lob_command_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ob, msg = write_day(tmp_path / "day", *prefix(4_000))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "lob",
                "--orderbook",
                str(ob),
                "--message",
                str(msg),
                "--hidden",
                "6",
                "--algos",
                "rtrl,tbptt:4",
                "--lr-half-life",
                "50",
                "--out",
                str(out),
            ]
        )
        raise SystemExit(0)
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert {
        "report.html",
        "table.csv",
        "metrics.csv",
        "predictions.parquet",
        "summary.json",
        "cumulative_accuracy.png",
        "log_loss.png",
        "mid_price.png",
    } <= names
    table = pd.read_csv(out / "table.csv")
    assert list(table["method"]) == [
        "elman rtrl",
        "elman tbptt:4",
        "logistic regression",
        "previous move",
        "majority class",
    ]
    assert table["accuracy_day"].between(0, 1).all()
    # every method that learns (the RNNs and the logistic regression) records the rate its
    # ensemble chose; the naive forecasters have none
    rates = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
    assert table["lr"][:3].isin(rates).all() and table["lr"][3:].isna().all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["events"] == 4_000
    assert summary["model"]["lr_half_life"] == 50
    assert "majority class" in (out / "report.html").read_text()


def test_lob_command_rejects_a_malformed_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "orderbook.csv"
    bad.write_text("2239500,100,2231800,100\n2239500,100,abc,21\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["lob", "--orderbook", str(bad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1 and "orderbook.csv" in err and "row 2" in err


def test_lob_command_names_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["lob", "--orderbook", str(tmp_path / "gone.csv"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1 and "gone.csv" in err and "Traceback" not in err


def test_lob_resume_continues_each_method_exactly(tmp_path: Path) -> None:
    """Stop after the first method finished and the second saved mid-day (its newest
    checkpoint removed, as after kill -9 before that save); --resume gives the same results."""
    ob, msg = write_day(tmp_path / "day", *prefix(3_000))
    options = dict(orderbook=ob, message=msg, algorithms=("rtrl", "tbptt:5"), hidden=6, chunk=400)
    (tmp_path / "a").mkdir()
    straight = lob.run(tmp_path / "a", checkpoint_every=800, **options)
    out = tmp_path / "b"
    out.mkdir()
    lob.run(out, checkpoint_every=800, **options)
    newest = sorted((out / "checkpoints" / "elman-tbptt_5").glob("checkpoint-*.npz"))[-1]
    newest.unlink()
    for name in ("table.csv", "predictions.parquet", "summary.json"):
        (out / name).unlink()
    resumed = lob.run(out, checkpoint_every=800, resume=True, **options)
    assert resumed["resumed"]
    expected = pd.read_parquet(tmp_path / "a" / "predictions.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(out / "predictions.parquet"), expected)
    for mine, theirs in zip(resumed["results"], straight["results"], strict=True):
        mine.pop("steps_per_second"), theirs.pop("steps_per_second")
        assert pd.Series(mine).equals(pd.Series(theirs))  # NaN (no rate) equals NaN


def test_lob_resume_is_refused_without_a_run_or_with_other_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ob, msg = write_day(tmp_path / "day", *prefix(1_500))
    base = ["lob", "--orderbook", str(ob), "--message", str(msg), "--algos", "rtrl"]
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--out", str(tmp_path / "none"), "--resume"])
    assert exit_info.value.code == 2 and "no run to resume" in capsys.readouterr().err
    out = tmp_path / "run"
    main([*base, "--hidden", "4", "--out", str(out)])  # returns normally on success
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main([*base, "--hidden", "5", "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "--hidden 5 differs from the run being resumed (4)" in err
