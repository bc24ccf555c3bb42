"""Validated run configuration (pydantic): every command builds one of these, so a bad value
is reported once, naming the offending key."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from streamgrad.errors import UserError

CellName = Literal["elman", "gru", "diagonal", "meanfield"]


class TrainConfig(BaseModel):
    """Model, gradient algorithm and optimizer of one online run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell: CellName = "elman"
    hidden: int = Field(32, ge=1, le=100_000)
    coupling: Literal["shared", "diagonal", "dense"] = "shared"  # meanfield only
    beta: float = Field(0.5, ge=0.5, lt=1.0)  # meanfield readout scaling N^(-beta)
    density: float = Field(1.0, gt=0.0, le=1.0)  # elman only: share of recurrent connections
    algo: str = "rtrl"  # rtrl | rtrl:dense | tbptt | tbptt:TAU | tbptt:EVERY:TAU | ...
    tau: int = Field(10, ge=1)  # truncation of plain `tbptt`
    optimizer: Literal["sgd", "adam", "rmsprop", "adamw"] = "sgd"
    lr: float = Field(0.01, gt=0.0)
    schedule: Literal["constant", "robbins-monro", "cosine", "exponential"] = "constant"
    k0: float = Field(10_000.0, gt=0.0)  # Robbins-Monro: lr / (1 + k / k0)^rho
    rho: float = Field(0.75, gt=0.5, le=1.0)
    decay_steps: int = Field(100_000, ge=1)
    clip: float | None = Field(None, gt=0.0)  # global-norm gradient clipping
    lr_backoff: float | None = Field(None, gt=0.0, lt=1.0)  # on divergence: lr *= this, retry
    max_backoffs: int = Field(3, ge=1)  # then give up
    seed: int = 0
    chunk: int = Field(10_000, ge=1)  # steps per jitted scan between progress updates
    dtype: Literal["float32", "float64"] = "float32"
    standardize: bool = False  # inputs: causal running z-scores (data.lob_features)

    @model_validator(mode="after")
    def _meanfield_options(self) -> TrainConfig:
        if self.cell != "meanfield" and "coupling" in self.model_fields_set:
            raise ValueError("coupling applies to the meanfield cell only")
        if self.cell != "elman" and self.density < 1.0:
            raise ValueError("density applies to the elman cell only")
        from streamgrad.gradients import make_algorithm
        from streamgrad.model import make_model

        # parse the algorithm spec now (on a tiny model) so a typo fails before any work
        make_algorithm(self.algorithm_spec, make_model(self.cell, 2, 1, **self.cell_options))
        return self

    @property
    def algorithm_spec(self) -> str:
        return f"tbptt:{self.tau}" if self.algo == "tbptt" else self.algo

    @property
    def cell_options(self) -> dict[str, object]:
        if self.cell == "meanfield":
            return {"coupling": self.coupling}
        return {"density": self.density} if self.density < 1.0 else {}


class LobOptions(BaseModel):
    """The `lob` command's options (the data, and the settings every method shares)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    orderbook: str | None = None  # None: the bundled AMZN day
    message: str | None = None
    levels: int | None = Field(None, ge=1)
    sampling: Literal["event", "clock"] = "event"
    dt: float = Field(1.0, ge=1e-3)  # clock sampling interval (s)
    classes: Literal[2, 3] = 2
    cells: str = "elman"  # comma-separated
    algos: str = "rtrl,tbptt:10,tbptt:1"  # comma-separated algorithm specs
    hidden: int = Field(32, ge=1, le=100_000)
    optimizer: Literal["sgd", "adam", "rmsprop", "adamw"] = "adam"
    lr: float = Field(1e-3, gt=0.0)
    seed: int = 0
    skip_invalid: bool = False

    @staticmethod
    def _split(text: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in text.split(",") if part.strip())

    @property
    def cell_list(self) -> tuple[str, ...]:
        return self._split(self.cells)

    @property
    def algo_list(self) -> tuple[str, ...]:
        return self._split(self.algos)


def validate(
    model: type[BaseModel], values: dict[str, object], source: str = "config"
) -> BaseModel:
    """Build `model` from `values`; a validation problem becomes a one-line UserError naming
    the first offending key and value."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        key = ".".join(str(part) for part in first["loc"])
        if not key:  # a check across several keys: its message names them
            raise UserError(message if source == "option" else f"{source}: {message}") from None
        value = first.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        where = f"--{key.replace('_', '-')}" if source == "option" else f"{source}: {key}"
        raise UserError(f"{where}: {message}{shown}") from None


def load_config_file(path: Path) -> dict[str, object]:
    """Read a JSON or TOML config file into a dict (validated by the caller)."""
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(path.read_text())
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise UserError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {error}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the config must be a table of key = value pairs")
    return data
