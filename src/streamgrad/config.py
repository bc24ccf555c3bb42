"""Validated run configuration (pydantic): every command builds one of these, so a bad value
is reported once, naming the offending key."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from streamgrad.errors import UserError

CellName = Literal["elman", "gru", "diagonal", "meanfield"]


def parse_lrs(value: object) -> float | tuple[float, ...]:
    """A learning rate (a number) or several (a comma-separated string or a list, for a
    learning-rate ensemble, `ensemble.LrEnsemble`): one as a float, several as a tuple of
    distinct finite numbers > 0."""
    parts = value.split(",") if isinstance(value, str) else value
    try:
        rates = [float(part) for part in (parts if isinstance(parts, list | tuple) else [parts])]
    except (TypeError, ValueError):
        raise ValueError("must be a number, or several separated by commas") from None
    if not rates or not all(math.isfinite(rate) and rate > 0 for rate in rates):
        raise ValueError("learning rates must be finite numbers > 0")
    if len(set(rates)) < len(rates):
        raise ValueError("the learning rates of an ensemble must differ")
    return rates[0] if len(rates) == 1 else tuple(rates)


def lr_option(text: str | None) -> float | list[float] | None:
    """`--lr` as given on a command line: one rate (float) or several (list, as run.json
    stores them), or None; a bad value raises a one-line UserError naming `--lr`."""
    if text is None:
        return None
    try:
        rates = parse_lrs(text)
    except ValueError as error:
        raise UserError(f"--lr: {error} (got {text!r})") from None
    return list(rates) if isinstance(rates, tuple) else rates


# a learning rate, or a tuple of several (an ensemble), written to JSON as a number or a list
LearningRates = Annotated[
    float | tuple[float, ...],
    BeforeValidator(parse_lrs),
    PlainSerializer(lambda rates: list(rates) if isinstance(rates, tuple) else rates),
]


class TrainConfig(BaseModel):
    """Model, gradient algorithm and optimizer of one online run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell: CellName = "elman"
    hidden: int = Field(32, ge=1, le=100_000)
    coupling: Literal["shared", "diagonal", "dense"] = "shared"  # meanfield only
    beta: float = Field(0.5, ge=0.5, lt=1.0)  # meanfield readout scaling N^(-beta)
    density: float = Field(1.0, gt=0.0, le=1.0)  # elman only: share of recurrent connections
    contract: float | None = Field(None, gt=0.0)  # elman/gru: spectral bound G of recurrent weights
    algo: str = "rtrl"  # rtrl | rtrl:dense | tbptt | tbptt:TAU | tbptt:EVERY:TAU | ...
    tau: int = Field(10, ge=1)  # truncation of plain `tbptt`
    optimizer: Literal["sgd", "adam", "rmsprop", "adamw"] = "sgd"
    lr: LearningRates = 0.01  # several: a learning-rate ensemble (ensemble.LrEnsemble)
    lr_half_life: float = Field(100.0, gt=0.0)  # ensemble: half-life (ensemble.DEFAULT_HALF_LIFE)
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
        if isinstance(self.lr, tuple) and self.lr_backoff is not None:
            raise ValueError(
                "--lr-backoff applies to one learning rate; an ensemble (several --lr) "
                "restarts a diverging copy from the best one instead"
            )
        if self.contract is not None and self.cell not in ("elman", "gru"):
            raise ValueError(f"--contract applies to the elman and gru cells only, not {self.cell}")
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
        options: dict[str, object] = {"density": self.density} if self.density < 1.0 else {}
        if self.contract is not None:
            options["contract"] = self.contract
        return options


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
    # comma-separated algorithm specs; the default pairs them at equal update frequency
    algos: str = "rtrl,tbptt:1:10,rtrl:every=10,tbptt:10"
    hidden: int = Field(32, ge=1, le=100_000)
    optimizer: Literal["sgd", "adam", "rmsprop", "adamw"] = "adam"
    lr: LearningRates = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)  # several: an ensemble per method
    lr_half_life: float = Field(100.0, gt=0.0)  # ensemble: half-life (ensemble.DEFAULT_HALF_LIFE)
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
