"""Tests for the new-user problems of issue 14: date time stamps, flag names in errors,
naive baselines in `train`, online input standardisation and the LOB progress loss."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamgrad import baselines
from streamgrad.cli import main
from streamgrad.config import TrainConfig
from streamgrad.data.dataset import Stream
from streamgrad.data.lob_features import standardize_online
from streamgrad.data.tabular import read_table
from streamgrad.errors import DataError
from streamgrad.metrics import LogLoss
from streamgrad.optim import make_optimizer, make_schedule
from streamgrad.training import train_on_stream


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run `streamgrad ARGS`; return the exit code and everything printed."""
    try:
        main(args)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# --- time stamps: dates, date-times and numbers ------------------------------------------


@pytest.mark.parametrize(
    "stamps",
    [
        ["1987-05-21", "1987-05-22", "1987-06-01"],
        ["2024-01-02T10:00:00", "2024-01-02T10:00:01.5", "2024-01-02 11:00:00"],
        ["2024-01-02T10:00:00+01:00", "2024-01-02T09:30:00Z", "2024-01-02T10:00:00"],
        ["1", "2.5", "7"],
    ],
)
def test_time_column_accepts_dates_date_times_and_numbers(
    tmp_path: Path, stamps: list[str]
) -> None:
    rows = "".join(f"{t},{i},{2 * i}\n" for i, t in enumerate(stamps))
    stream = read_table(_csv(tmp_path, "day,a,y\n" + rows), "y", time="day", task="regression")
    assert stream.input_names == ("a",)
    np.testing.assert_array_equal(stream.targets, [0, 2, 4])


@pytest.mark.parametrize(
    ("stamps", "problem"),
    [
        (["1987-05-21", "1987-05-21"], "duplicated time stamp: not after the previous 1987-05-21"),
        (["1987-05-22", "1987-05-21"], "time stamps go back: not after the previous 1987-05-22"),
        (["2024-01-02T10:00:00", "2024-01-02T09:59:59"], "previous 2024-01-02T10:00:00"),
        (["1987-05-21", "12"], "a number in a column of dates"),
        (["1987-05-21", "21/05/1987"], "not a date"),
    ],
)
def test_bad_dates_are_located(tmp_path: Path, stamps: list[str], problem: str) -> None:
    path = _csv(tmp_path, "day,a,y\n1987-05-01,0,0\n" + "".join(f"{t},1,1\n" for t in stamps))
    with pytest.raises(DataError) as info:
        read_table(path, "y", time="day")
    error = info.value
    assert (error.file, error.row, error.column) == (str(path), 4, "day")
    assert problem in str(error) and stamps[-1] in str(error) and "\n" not in str(error)


def test_skipped_dates_are_the_late_ones(tmp_path: Path) -> None:
    rows = "1987-05-21,0,0\n1987-05-20,1,1\n1987-05-22,2,2\n"
    stream = read_table(_csv(tmp_path, "day,a,y\n" + rows), "y", time="day", skip_invalid=True)
    assert stream.skipped_rows == (3,)


@pytest.mark.parametrize(
    "stamps",
    [
        pa.array(np.array(["1987-05-21", "1987-05-22"], dtype="datetime64[D]")),
        pa.array(np.array(["2024-01-02T10:00", "2024-01-02T10:01"], dtype="datetime64[ns]")),
        pa.array(np.array([0, 60], dtype="int64"), pa.timestamp("s", tz="Europe/Paris")),
        pa.array(["1987-05-21", "1987-05-22"]),
    ],
)
def test_parquet_timestamp_and_date_columns(tmp_path: Path, stamps: pa.Array) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"day": stamps, "a": [1.0, 2.0], "y": [3.0, 4.0]}), path)
    stream = read_table(path, "y", time="day")
    np.testing.assert_array_equal(stream.inputs, [[1.0], [2.0]])
    backwards = pa.table({"day": stamps.take([1, 0]), "a": [1.0, 2.0], "y": [3.0, 4.0]})
    pq.write_table(backwards, path)
    with pytest.raises(DataError, match=r"row 2, column 'day'.*time stamps go back"):
        read_table(path, "y", time="day")


def test_dates_are_not_inputs(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    day = pa.array(np.array(["1987-05-21", "1987-05-22"], dtype="datetime64[D]"))
    pq.write_table(pa.table({"day": day, "a": [1.0, 2.0], "y": [3.0, 4.0]}), path)
    with pytest.raises(DataError, match=r"column 'day'.*dates"):
        read_table(path, "y")


def test_train_with_a_date_time_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    days = np.arange("1987-05-21", "1987-07-30", dtype="datetime64[D]")
    rng = np.random.default_rng(0)
    rows = "".join(f"{d},{rng.normal():.6f},{rng.normal():.6f}\n" for d in days)
    path = _csv(tmp_path, "day,x,y\n" + rows)
    args = ["train", "--data", str(path), "--target", "y", "--time", "day", "--hidden", "3"]
    code, printed = run_cli([*args, "--out", str(tmp_path / "run")], capsys)
    assert code == 0, printed


# --- errors name the command-line flag ---------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "time", "flag"),
    [
        ("1,0.5,1\n2,nan,2\n", [], "--skip-invalid"),
        ("2,0.5,1\n1,0.5,2\n", ["--time", "t"], "--skip-invalid"),
        ("1,0.5,1\n2,0.5,-1\n", [], "--task regression"),
    ],
)
def test_errors_name_the_command_line_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: str, time: list[str], flag: str
) -> None:
    path = _csv(tmp_path, "t,x,y\n" + rows)
    args = ["train", "--data", str(path), "--target", "y", *time, "--out", str(tmp_path / "o")]
    code, printed = run_cli(args, capsys)
    assert code == 2 and flag in printed and "row 3" in printed


# --- naive baselines in every train run --------------------------------------------------


def _table(tmp_path: Path, targets: np.ndarray) -> Path:
    rng = np.random.default_rng(3)
    rows = "".join(f"{rng.normal():.6f},{y}\n" for y in targets)
    return _csv(tmp_path, "x,y\n" + rows)


def _train(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], path: Path, *extra: str
) -> tuple[dict, str]:
    out = tmp_path / "run"
    args = ["train", "--data", str(path), "--target", "y", "--hidden", "3", *extra]
    code, printed = run_cli([*args, "--out", str(out), "--force"], capsys)
    assert code == 0, printed
    return json.loads((out / "summary.json").read_text()), printed


def test_regression_runs_report_previous_target_and_running_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plotted: dict = {}
    monkeypatch.setattr("streamgrad.stream_run.plot_losses", lambda *a, **k: plotted.update(k))
    y = np.round(np.sin(np.arange(400) / 7.0) + 0.1 * np.arange(400) / 400, 6)
    summary, printed = _train(tmp_path, capsys, _table(tmp_path, y), "--task", "regression")
    previous = np.r_[0.0, y[:-1]]
    mean = np.r_[0.0, np.cumsum(y)[:-1] / np.arange(1, 400)]
    expected = {"previous target": previous, "running mean": mean}
    assert set(summary["baselines"]) == set(expected) == set(plotted["baselines"])
    for name, prediction in expected.items():
        losses = (prediction - y) ** 2
        np.testing.assert_allclose(plotted["baselines"][name], losses)
        reported = summary["baselines"][name]
        assert reported["overall"]["loss"] == pytest.approx(losses.mean())
        assert reported["last_10_percent"]["loss"] == pytest.approx(losses[-40:].mean())
        assert name in printed
    best = min(expected, key=lambda n: summary["baselines"][n]["last_10_percent"]["loss"])
    best_loss = summary["baselines"][best]["last_10_percent"]["loss"]
    skill = 1 - summary["last_10_percent"]["loss"] / best_loss
    assert summary["skill"] == {"best_baseline": best, "last_10_percent": pytest.approx(skill)}
    assert "skill" in printed


def test_classification_runs_report_majority_class_and_previous_label(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    y = np.repeat([0, 1, 1, 2], 50)  # long runs: the previous label is nearly always right
    summary, printed = _train(tmp_path, capsys, _table(tmp_path, y))
    baselines = summary["baselines"]
    assert set(baselines) == {"majority class", "previous label"}
    majority = baselines["majority class"]["overall"]
    previous = baselines["previous label"]["overall"]
    assert previous["accuracy"] == pytest.approx(198 / 200)  # wrong at the 2 changes
    assert previous["log_loss"] < majority["log_loss"]
    assert summary["skill"]["best_baseline"] == "previous label"
    assert "majority class" in printed and "previous label" in printed


# --- online standardisation of the inputs ------------------------------------------------


def _stream(inputs: np.ndarray) -> Stream:
    targets = np.sin(np.cumsum(inputs[:, 0] - inputs[:, 0].mean()) / 50.0)
    return Stream(inputs, targets, ("a", "b"), "y")


def _raw_inputs(n: int = 900) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.normal(size=(n, 2)) * [3.0, 0.01] + [1000.0, -7.0]


def test_standardize_is_the_causal_z_score_and_removes_the_scale() -> None:
    config = TrainConfig(hidden=4, chunk=128, dtype="float64", standardize=True)
    plain = config.model_copy(update={"standardize": False})
    stream = _stream(_raw_inputs())
    standardized = train_on_stream(config, stream)
    z = replace(stream, inputs=standardize_online(stream.inputs))
    by_hand = train_on_stream(plain, z)
    np.testing.assert_array_equal(standardized.history.losses, by_hand.history.losses)
    assert not np.allclose(train_on_stream(plain, stream).history.losses, by_hand.history.losses)
    # an affine change of the inputs' units changes nothing but rounding
    rescaled = train_on_stream(config, replace(stream, inputs=stream.inputs * [2, 1e3] + 5))
    np.testing.assert_allclose(rescaled.history.losses, standardized.history.losses, atol=1e-9)
    # causal: changing the inputs from step 600 on changes no output before it
    changed = stream.inputs.copy()
    changed[600:] += 1e4
    later = train_on_stream(config, replace(stream, inputs=changed))
    np.testing.assert_array_equal(later.history.outputs[:600], standardized.history.outputs[:600])


def test_standardize_resumes_bitwise(tmp_path: Path) -> None:
    config = TrainConfig(hidden=4, chunk=100, standardize=True)
    stream = _stream(_raw_inputs())
    reference = train_on_stream(config, stream)
    folder = tmp_path / "checkpoints"
    train_on_stream(config, stream, checkpoints=folder, checkpoint_every=300)
    sorted(folder.glob("checkpoint-*.npz"))[-1].unlink()  # back to the one before the end
    resumed = train_on_stream(config, stream, checkpoints=folder, resume=True)
    np.testing.assert_array_equal(resumed.history.losses, reference.history.losses)
    np.testing.assert_array_equal(resumed.history.outputs, reference.history.outputs)


def test_standardize_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary, _ = _train(tmp_path, capsys, _table(tmp_path, np.arange(50) * 0.5), "--standardize")
    assert summary["config"]["standardize"] is True


# --- the progress bar shows the loss the final metrics report ----------------------------


class _Bar:
    """Stands in for rich's progress bar, recording the descriptions it is given."""

    def __init__(self) -> None:
        self.descriptions: list[str] = []

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *error: object) -> None:
        return None

    def add_task(self, description: str, **fields: object) -> int:
        return 0

    def update(self, task: int, *, advance: int, description: str) -> None:
        self.descriptions.append(description)


def test_progress_loss_is_the_log_loss_over_labelled_steps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bar = _Bar()
    monkeypatch.setattr("streamgrad.online.progress_bar", lambda enabled: bar)
    rng = np.random.default_rng(2)
    inputs = rng.normal(size=(400, 3))
    labels = (inputs[:, 0] > 0).astype(int)
    labels[rng.random(400) < 0.6] = -1  # most labels are not revealed
    optimizer = make_optimizer("sgd", make_schedule("constant", 0.1))
    learner, state = baselines.logistic_regression(3, 2, optimizer)
    _, history = learner.fit(state, inputs, labels, chunk_size=150, progress=True)
    log_loss = LogLoss().update(history.outputs, labels).get()
    assert float(bar.descriptions[-1].removeprefix("training loss ")) == pytest.approx(
        log_loss, rel=1e-3
    )
    assert len(bar.descriptions) == 3


def test_progress_loss_scores_the_evaluation_labels_when_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The LOB learners train on delayed targets; the bar must show the log-loss against the
    evaluation labels that the final table reports, not against the training targets."""
    bar = _Bar()
    monkeypatch.setattr("streamgrad.online.progress_bar", lambda enabled: bar)
    rng = np.random.default_rng(3)
    inputs = rng.normal(size=(400, 3))
    labels = (inputs[:, 0] > 0).astype(int)
    training = np.where(rng.random(400) < 0.5, labels, -1)  # half the labels arrive in time
    optimizer = make_optimizer("sgd", make_schedule("constant", 0.1))
    learner, state = baselines.logistic_regression(3, 2, optimizer)
    _, history = learner.fit(
        state, inputs, training, chunk_size=150, progress=True, scored_by=labels
    )
    evaluated = LogLoss().update(history.outputs, labels).get()
    trained = LogLoss().update(history.outputs, training).get()
    shown = float(bar.descriptions[-1].removeprefix("training loss "))
    assert shown == pytest.approx(evaluated, rel=1e-3)
    assert abs(evaluated - trained) > 1e-3  # the two quantities differ here
