"""The typer application, its shared console and the helpers every command uses."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from streamgrad.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Online training of recurrent networks on long streams with exact gradients (RTRL).",
)
experiment_app = typer.Typer(no_args_is_help=True, help="Run a named, reproducible experiment.")
app.add_typer(experiment_app, name="experiment")
console = Console(stderr=True, soft_wrap=True, emoji=False)  # messages; tables: stdout


def given(**values: Any) -> dict[str, Any]:
    """The options the user gave (None means not given)."""
    return {key: value for key, value in values.items() if value is not None}


def numbers(text: str, kind: type, option: str) -> list[Any]:
    """Comma-separated numbers of an option such as --lrs 0.01,0.1."""
    try:
        return [kind(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"{option}: expected comma-separated numbers, got {text!r}") from None


def parse_sizes(text: str) -> tuple[int, ...]:
    """--sizes: comma-separated N >= 1."""
    values = tuple(numbers(text, int, "--sizes"))
    if min(values) < 1:
        raise UserError(f"--sizes: every N must be >= 1, got {text!r}")
    return values


def run_experiment(name: str, out: Path, options: dict[str, Any], force: bool, files: str) -> None:
    """Run a registered experiment into `out`, print its table and where the results are."""
    from streamgrad import jobs

    summary = jobs.experiment(name, out, options, force=force, progress=True)
    module = importlib.import_module(jobs.EXPERIMENTS[name])
    Console(soft_wrap=True).print(module.table_text(summary))
    console.print(f"results in {out}/ (summary.json, {files})")
