"""run_sweep: expand a spec into runs, run the unfinished ones on an executor, gather results.

Rerunning a sweep into the same folder skips its finished runs and resumes the others from
their checkpoints; a spec that differs from the one the folder was started with is refused.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from streamgrad.errors import UserError
from streamgrad.reporting import write_json
from streamgrad.runs import prepare_output_dir
from streamgrad.sweep.executor import Outcome, Task, make_executor
from streamgrad.sweep.progress import SweepView, live
from streamgrad.sweep.results import plot_metric, results_table, write_results
from streamgrad.sweep.spec import (
    Run,
    SweepSpec,
    expand,
    load_spec,
    refuse_changed_spec,
    spec_record,
)
from streamgrad.sweep.task import run_in_folder

SWEEP_FILE = "sweep.json"


@dataclass
class SweepResult:
    """The results table (one row per run) and summary.json's contents."""

    table: pd.DataFrame
    summary: dict[str, Any]

    @property
    def failed(self) -> int:
        return int((self.table.status == "failed").sum())


def run_sweep(
    spec_file: Path,
    out: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    metric: str | None = None,
    console: Console | None = None,
) -> SweepResult:
    """Run the sweep `spec_file` into `out` (see make_executor for `workers` and
    `scheduler`); writes results.parquet, results.csv, summary.json and plot.png of `metric`
    (default: the spec's). Failed runs are in the result, not raised."""
    spec = load_spec(spec_file)
    runs = expand(spec, spec_file.parent)
    record = spec_record(spec, spec_file.parent)
    if (out / SWEEP_FILE).is_file():
        refuse_changed_spec(record, _read(out / SWEEP_FILE)["spec"], spec_file)
    else:
        prepare_output_dir(out)
        write_json(out / SWEEP_FILE, {"spec": record, "spec_file": str(spec_file.resolve())})
    records = {run.id: _read_record(out, run) for run in runs}
    todo = [run for run in runs if (records[run.id] or {}).get("status") != "done"]
    closing: threading.Thread | None = None
    if todo:
        by_id = {run.id: run for run in todo}
        tasks = [
            Task(run.id, run_in_folder, (spec.command, run.options, str(_folder(out, run))))
            for run in todo
        ]
        executor = make_executor(workers, scheduler)
        view = SweepView(len(runs), len(runs) - len(todo), executor.description)

        def finished(outcome: Outcome) -> None:
            records[outcome.key] = _store(out, by_id[outcome.key], outcome)
            view.finish(outcome.key, records[outcome.key].get("error"))

        try:
            with live(view, console or Console(stderr=True)):
                executor.run(tasks, running=view.set_running, finished=finished)
        except BaseException:
            executor.close()
            raise
        closing = executor.close_in_background()  # the workers stop while results are written
    try:
        return _gather(out, runs, records, spec, record, metric or spec.metric)
    finally:
        if closing is not None:
            closing.join()


def _gather(
    out: Path,
    runs: list[Run],
    records: dict[str, Any],
    spec: SweepSpec,
    record: dict[str, Any],
    metric: str,
) -> SweepResult:
    """results.parquet, results.csv, summary.json and plot.png of the runs' records."""
    table = results_table(runs, records, spec.base)
    summary = write_results(out, table, record, spec.axes, metric)
    if summary["done"]:
        plot_metric(out / "plot.png", table, spec.axes, metric)
    return SweepResult(table, summary)


def _folder(out: Path, run: Run) -> Path:
    return (out / "runs" / run.id).resolve()


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise UserError(f"{path}: damaged ({error})") from None


def _read_record(out: Path, run: Run) -> dict[str, Any] | None:
    """The sweep's record of `run` from an earlier attempt, if any."""
    path = out / "runs" / f"{run.id}.json"
    return _read(path) if path.is_file() else None


def _store(out: Path, run: Run, outcome: Outcome) -> dict[str, Any]:
    """Write runs/<id>.json (atomically: a rerun trusts a record it finds) and return it."""
    value = outcome.value or {}
    error = outcome.error or value.get("error")
    record = {
        "id": run.id,
        "overrides": run.overrides,
        "options": run.options,
        "status": "failed" if error else "done",
        "error": error,
        "resumed": value.get("resumed"),
        "summary": value.get("summary"),
    }
    path = out / "runs" / f"{run.id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    write_json(temporary, record)
    os.replace(temporary, path)
    return _read(path)
