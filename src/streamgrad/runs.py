"""Run folders: where one command's results live, and how a run is identified and resumed.

Every command that writes results (train, lob, the experiments, each run of a sweep) owns one
folder:

    run.json        the options the run was started with, and its identity (config and data
                    hashes); `--resume` refuses to continue with different options
    checkpoints/    atomic checkpoints (see checkpoint.py)
    summary.json    metrics over the whole run, settings, versions
    metrics.csv     per-chunk metrics; loss.png and other plots

A folder is never overwritten by accident: a new run needs an empty (or absent) folder, or
`force`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from streamgrad.errors import UserError
from streamgrad.online import History
from streamgrad.reporting import chunk_table, plot_losses, versions, write_json

RUN_FILE = "run.json"


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's contents, read in chunks."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def config_hash(config: Mapping[str, Any]) -> str:
    """Hex sha256 of the canonical JSON of `config` (sorted keys, no whitespace, ASCII)."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def prepare_output_dir(path: Path, *, force: bool = False) -> Path:
    """Create `path`; refuse an existing non-empty folder unless `force` (results are never
    overwritten by accident)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a folder")
    if path.exists() and any(path.iterdir()) and not force:
        raise UserError(f"{path}: output folder exists and is not empty (use --force to overwrite)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def refuse_changes(given: Mapping[str, Any], stored: Mapping[str, Any]) -> None:
    """`--resume` must not change an option: name the first of `given` that differs from
    `stored`, as the command-line flag."""
    for key, value in given.items():
        if stored.get(key) != value:
            raise UserError(
                f"--resume: --{key.replace('_', '-')} {value!r} differs from the run being "
                f"resumed ({stored.get(key)!r})"
            )


class RunFolder:
    """The output folder of one run and its `run.json` record.

    `RunFolder.start(path, record, force=...)` begins a new run; `RunFolder.reopen(path)`
    continues one (`record` is then what run.json holds).
    """

    def __init__(self, path: Path, record: dict[str, Any]) -> None:
        self.path = path
        self.record = record

    @classmethod
    def start(cls, path: Path, record: Mapping[str, Any], *, force: bool = False) -> RunFolder:
        prepare_output_dir(path, force=force)
        write_json(path / RUN_FILE, record)
        return cls(path, json.loads((path / RUN_FILE).read_text()))

    @classmethod
    def reopen(cls, path: Path) -> RunFolder:
        run_file = path / RUN_FILE
        if not run_file.is_file():
            raise UserError(f"{path}: no run to resume ({RUN_FILE} missing)")
        try:
            record = json.loads(run_file.read_text())
        except ValueError as error:
            raise UserError(f"{run_file}: damaged ({error})") from None
        return cls(path, record)

    @classmethod
    def open(
        cls, path: Path, record: Mapping[str, Any], *, resume: bool, force: bool = False
    ) -> RunFolder:
        """A new run (`resume=False`), or the run in `path` after checking that `record`
        repeats the options it was started with."""
        if not resume:
            return cls.start(path, record, force=force)
        folder = cls.reopen(path)
        refuse_changes(record, folder.record)
        return folder

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def write_summary(self, summary: Mapping[str, Any]) -> dict[str, Any]:
        """summary.json, with the versions of the software that made it."""
        full = {**summary, "versions": versions()}
        write_json(self.path / "summary.json", full)
        return full

    def write_metrics(
        self,
        histories: Mapping[str, History],
        *,
        title: str,
        log_scale: bool,
        baselines: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """metrics.csv (per chunk, every run) and loss.png (moving-average prequential loss,
        with the per-step losses (T,) of `baselines`, by name, dashed)."""
        chunk_table(histories).to_csv(self.path / "metrics.csv", index=False)
        plot_losses(
            self.path / "loss.png", histories, title=title, log_scale=log_scale, baselines=baselines
        )
