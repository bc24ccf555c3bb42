"""The live view of a sweep: a bar of finished runs, the counts done / running / failed /
waiting, and the failed runs with their one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from streamgrad.reporting import Column, render_table

SHOWN_FAILURES = 10  # the newest ones; results.csv and summary.json have them all
# over_seeds columns that are statistics (right-aligned) and the format of their values
STATISTICS = {"runs": "", "mean": ".6g", "std": ".6g", "min": ".6g", "max": ".6g"}


class SweepView:
    """State of a sweep of `total` runs, `skipped` of them finished by an earlier attempt.
    Rendered by rich each time the live display refreshes."""

    def __init__(self, total: int, skipped: int, where: str) -> None:
        self.total, self.skipped, self.where = total, skipped, where
        self.done = skipped
        self.running: set[str] = set()
        self.failures: list[tuple[str, str]] = []

    def set_running(self, keys: set[str]) -> None:
        self.running = set(keys)

    def finish(self, key: str, error: str | None) -> None:
        self.running.discard(key)
        if error is None:
            self.done += 1
        else:
            self.failures.append((key, error))

    def __rich__(self) -> RenderableType:
        finished = self.done + len(self.failures)
        waiting = self.total - finished - len(self.running)
        line = Table.grid(padding=(0, 1))
        line.add_row(
            ProgressBar(total=self.total, completed=finished, width=30),
            Text(
                f"{finished}/{self.total} runs: {self.done} done"
                + (f" ({self.skipped} earlier)" if self.skipped else "")
                + f", {len(self.running)} running, {len(self.failures)} failed, "
                f"{waiting} waiting ({self.where})"
            ),
        )
        shown = [Text(f"  failed {key}: {error}", style="red") for key, error in self.failures]
        return Group(line, *shown[-SHOWN_FAILURES:])


@contextmanager
def live(view: SweepView, console: Console) -> Iterator[SweepView]:
    """Show `view` on `console` while the sweep runs (re-rendered 4 times a second on a
    terminal; otherwise printed once at the end)."""
    with Live(view, console=console, refresh_per_second=4):
        yield view
    if not console.is_terminal:  # off a terminal rich ends the final render without a newline
        console.line()


def failures_table(table: pd.DataFrame) -> Text:
    """The failed runs of a results table, with their errors (printed when a sweep ends)."""
    failed = table[table.status == "failed"]
    rows = [
        {"run": run, "error": error} for run, error in zip(failed.id, failed.error, strict=True)
    ]
    columns = [Column("run", align="left"), Column("error", align="left")]
    return Text(render_table(rows, columns, title=f"{len(failed)} of {len(table)} runs failed"))


def over_seeds_table(summary: dict[str, Any]) -> Text:
    """summary.json's metric over seeds, one row per combination of the other swept options."""
    rows = summary["over_seeds"]
    columns = [
        Column(key, spec=STATISTICS[key]) if key in STATISTICS else Column(key, align="left")
        for key in (rows[0] if rows else [])
    ]
    title = f"{summary['metric']} over seeds ({summary['done']} runs done)"
    return Text(render_table(rows, columns, title=title))
