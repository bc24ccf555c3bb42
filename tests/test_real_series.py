"""The real-series study: loaders, the equal-frequency pairs and the quick experiment."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamgrad.cli import main
from streamgrad.data.real_series import LOADERS, load_series, one_step_stream
from streamgrad.errors import UserError
from streamgrad.experiments.lr_choice import equal_frequency


def test_equal_frequency_pairs() -> None:
    assert equal_frequency((3, 10)) == [
        (1, "rtrl"),
        (1, "tbptt:1:3"),
        (1, "tbptt:1:10"),
        (3, "rtrl:every=3"),
        (3, "tbptt:3"),
        (10, "rtrl:every=10"),
        (10, "tbptt:10"),
    ]


@pytest.mark.parametrize("name", list(LOADERS))
def test_series_are_one_step_ahead_and_standardised(name: str) -> None:
    series = load_series(name)
    stream = one_step_stream(series)
    assert len(stream) == len(series.values) - 1 > 500
    z = np.r_[stream.inputs[:, 0], stream.targets[-1]]
    assert abs(z.mean()) < 1e-9 and abs(z.std() - 1.0) < 1e-9
    np.testing.assert_array_equal(stream.inputs[1:, 0], stream.targets[:-1])


def test_unknown_series_is_one_line() -> None:
    with pytest.raises(UserError, match="unknown series 'nile'"):
        load_series("nile")


def test_quick_study_beats_persistence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rs"
    with pytest.raises(SystemExit) as exit_info:
        main(["experiment", "real-series", "--quick", "--lrs", "1e-3,1e-2", "--half-life", "200",
              "--out", str(out)])  # fmt: skip
        raise SystemExit(0)
    assert exit_info.value.code in (0, None), capsys.readouterr().err
    assert {"runs.csv", "table.csv", "forecasters.csv", "scores.png", "summary.json"} <= {
        p.name for p in out.iterdir()
    }
    summary = json.loads((out / "summary.json").read_text())
    table = summary["table"]
    assert summary["settings"]["half_life"] == 200
    assert [row["network"] for row in table] == [
        "elman rtrl",
        "elman tbptt:1:10",
        "elman rtrl:every=10",
        "elman tbptt:10",
    ]
    persistence = summary["forecasters"]["elnino"]["previous target"]
    for row in table:  # the networks learn the series: well below persistence
        assert row["best_single"] < 0.6 * persistence and row["ensemble"] < 0.6 * persistence
