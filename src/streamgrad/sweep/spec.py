"""The sweep spec: a TOML (or JSON) file naming one command, its base options and the overrides
to sweep, expanded into runs with stable ids.

    command = "train"                 # or "lob", or "experiment NAME"
    metric = "last_10_percent.loss"   # optional: the results column that plot.png shows
    [base]                            # the command's options, as in its --config file
    data = "stream.csv"               # relative paths are taken from the spec's folder
    target = "y"
    [grid]                            # every combination of these lists is one run
    seed = [0, 1, 2]
    algo = ["rtrl", "tbptt:10"]
    [[runs]]                          # and/or an explicit list of override tables
    hidden = 16

With both `grid` and `runs`, every listed run is combined with every grid point. A run's options
are `base` updated with its overrides.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from streamgrad.config import load_config_file, validate
from streamgrad.errors import UserError

# Options that name files: a relative path in the spec is relative to the spec's folder, and
# runs (on any worker) get it absolute.
PATH_KEYS = frozenset({"data", "config", "orderbook", "message"})
# The axis that plot.png and summary.json aggregate over (a band over seeds).
SEED_AXIS = "seed"
Scalar = str | int | float | bool


class SweepSpec(BaseModel):
    """What a sweep runs: `command` with `base` options, over `grid` x `runs` overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: str
    base: dict[str, Scalar] = Field(default_factory=dict)
    grid: dict[str, list[Scalar]] = Field(default_factory=dict)
    runs: list[dict[str, Scalar]] = Field(default_factory=list)
    metric: str = "last_10_percent.loss"

    @field_validator("command")
    @classmethod
    def _known_command(cls, command: str) -> str:
        from streamgrad.jobs import EXPERIMENTS

        if command in ("train", "lob"):
            return command
        name = command.removeprefix("experiment ").strip()
        if command.startswith("experiment ") and name in EXPERIMENTS:
            return command
        if command.startswith("experiment "):
            raise ValueError(f"unknown experiment {name!r}; use one of {', '.join(EXPERIMENTS)}")
        raise ValueError(f"unknown command {command!r}; use train, lob or 'experiment NAME'")

    @field_validator("grid")
    @classmethod
    def _non_empty_axes(cls, grid: dict[str, list[Scalar]]) -> dict[str, list[Scalar]]:
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid.{key} is an empty list")
            if len(set(map(repr, values))) < len(values):
                raise ValueError(f"grid.{key} repeats a value: {values!r}")
        return grid

    @model_validator(mode="after")
    def _disjoint_overrides(self) -> SweepSpec:
        for entry in self.runs:
            both = sorted(set(entry) & set(self.grid))
            if both:
                raise ValueError(f"{both[0]} is set both in grid and in runs")
        keys = [json.dumps(entry, sort_keys=True) for entry in self.runs]
        if len(set(keys)) < len(keys):
            raise ValueError("runs lists the same overrides twice")
        return self

    @property
    def axes(self) -> list[str]:
        """The swept option names, in the order the spec gives them (grid, then runs)."""
        names = list(self.grid)
        for entry in self.runs:
            names += [key for key in entry if key not in names]
        return names


@dataclass(frozen=True)
class Run:
    """One run of a sweep: `overrides` as written in the spec, `options` what the command gets
    (base + overrides, file paths absolute)."""

    id: str
    overrides: dict[str, Scalar]
    options: dict[str, Scalar]


def load_spec(path: Path) -> SweepSpec:
    """Read and validate a spec file; problems are one-line UserErrors naming file and key."""
    return validate(SweepSpec, load_config_file(path), str(path))  # type: ignore[return-value]


def run_id(overrides: Mapping[str, Scalar]) -> str:
    """A folder name that depends only on the overrides: readable `key=value_...`, then 8 hex
    digits of their hash (so ids stay distinct however the values are abbreviated)."""
    canonical = json.dumps(dict(overrides), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
    slug = "_".join(f"{key}={value}" for key, value in overrides.items())
    slug = re.sub(r"[^A-Za-z0-9.=_+-]+", "-", slug)[:80]
    return f"{slug}-{digest}" if slug else digest


def resolve_paths(values: Mapping[str, Scalar], folder: Path) -> dict[str, Scalar]:
    """`values` with the PATH_KEYS made absolute, relative to `folder`."""
    return {
        key: os.path.abspath(folder / value)
        if key in PATH_KEYS and isinstance(value, str)
        else value
        for key, value in values.items()
    }


def expand(spec: SweepSpec, folder: Path) -> list[Run]:
    """The runs of `spec` (grid combinations in row-major order, within each listed run), with
    paths taken relative to `folder`."""
    points = [
        dict(zip(spec.grid, values, strict=True))
        for values in itertools.product(*spec.grid.values())
    ]
    runs = []
    for entry in spec.runs or [{}]:
        for point in points:
            overrides = {**point, **entry}
            options = resolve_paths({**spec.base, **overrides}, folder)
            runs.append(Run(run_id(overrides), overrides, options))
    return runs


def spec_record(spec: SweepSpec, folder: Path) -> dict[str, Any]:
    """What identifies a sweep (stored in sweep.json): the command and every option of every
    run, with absolute paths. The metric is not part of it: it only selects what is plotted."""
    return {
        "command": spec.command,
        "base": resolve_paths(spec.base, folder),
        "grid": {
            key: [resolve_paths({key: value}, folder)[key] for value in values]
            for key, values in spec.grid.items()
        },
        "runs": [resolve_paths(entry, folder) for entry in spec.runs],
    }


def first_change(given: Any, stored: Any, where: str = "") -> str | None:
    """`where.key new (was old)` for the first value of `given` that differs from `stored`
    (nested tables are compared key by key), or None when they are equal."""
    if isinstance(given, dict) and isinstance(stored, dict):
        for key in [*given, *(k for k in stored if k not in given)]:
            inner = first_change(given.get(key), stored.get(key), f"{where}{key}.")
            if inner:
                return inner
        return None
    if given == stored:
        return None
    shown = "not set" if stored is None else repr(stored)
    return f"{where.rstrip('.')} {'not set' if given is None else repr(given)} (was {shown})"


def refuse_changed_spec(record: Mapping[str, Any], stored: Mapping[str, Any], spec: Path) -> None:
    """A sweep folder belongs to one spec: name the first change in a rerun's spec."""
    change = first_change(dict(record), dict(stored))
    if change:
        raise UserError(
            f"{spec}: differs from the sweep being resumed: {change}; use another --out"
        )
