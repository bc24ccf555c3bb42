"""Config validation: any dict gives either a valid config or a one-line UserError."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamgrad.config import TrainConfig, load_config_file, validate
from streamgrad.errors import UserError

KEYS = [*TrainConfig.model_fields, "hiden", "learning_rate", ""]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**6),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "elman",
            "gru",
            "meanfield",
            "rtrl",
            "tbptt:5",
            "tbptt:x",
            "snap2",
            "sgd",
            "adam",
            "float64",
            "shared",
            "dense",
            "robbins-monro",
            "nope",
            "",
        ]
    ),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6))
def test_random_configs_validate_or_fail_with_one_line(values: dict) -> None:
    try:
        config = validate(TrainConfig, values, "run.toml")
    except UserError as error:
        message = str(error)
        assert message.startswith("run.toml: ") and "\n" not in message
        return
    assert isinstance(config, TrainConfig)
    assert config.hidden >= 1 and config.lr > 0


def test_cell_specific_options_are_refused_for_other_cells() -> None:
    with pytest.raises(UserError, match="density applies to the elman cell only"):
        validate(TrainConfig, {"cell": "gru", "density": 0.5}, "run.toml")
    sparse = validate(TrainConfig, {"density": 0.5, "algo": "snap2"}, "run.toml")
    assert sparse.cell_options == {"density": 0.5}


def test_unknown_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"run\.toml: hiden: Extra inputs are not permitted"):
        validate(TrainConfig, {"hiden": 3}, "run.toml")


@pytest.mark.parametrize("text", ["hidden = ", "[[[", "\x00\x01"])
def test_unreadable_config_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"bad\.toml: not valid toml"):
        load_config_file(path)


def test_json_config_must_be_a_table(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(UserError, match="key = value"):
        load_config_file(path)
