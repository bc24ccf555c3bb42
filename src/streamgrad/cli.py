"""Command-line interface: `streamgrad train | gradcheck | experiment | lob | bench`.

User errors (bad file, column, option, value; a diverging run) print one line `error: ...` on
stderr and exit with code 2, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console

from streamgrad.config import load_config_file
from streamgrad.errors import UserError

Task = Literal["regression", "classification", "auto"]
Sampling = Literal["event", "clock"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Online training of recurrent networks on long streams with exact gradients (RTRL).",
)
experiment_app = typer.Typer(no_args_is_help=True, help="Run a named, reproducible experiment.")
app.add_typer(experiment_app, name="experiment")
console = Console(stderr=True, soft_wrap=True)


def _options(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


@app.command(
    help="Train online (predict, then learn) on a table; writes metrics.csv, summary.json, "
    "loss.png, and checkpoints/ from which --resume continues exactly."
)
def train(
    out: Annotated[Path, typer.Option(help="Output folder (must not exist unless --force).")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="CSV or Parquet file, one example per row (with --resume: taken from the run)."
        ),
    ] = None,
    target: Annotated[str | None, typer.Option(help="Column to predict.")] = None,
    inputs: Annotated[
        str | None,
        typer.Option(help="Comma-separated input columns (default: all but the target)."),
    ] = None,
    task: Annotated[Task, typer.Option(help="regression, classification or auto.")] = "auto",
    time: Annotated[
        str | None,
        typer.Option(help="Time-stamp column: checked strictly increasing, not an input."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="JSON/TOML file of the options below; command-line values win."),
    ] = None,
    cell: Annotated[str | None, typer.Option(help="elman, gru, diagonal or meanfield.")] = None,
    hidden: Annotated[int | None, typer.Option(help="Hidden units N.")] = None,
    coupling: Annotated[
        str | None, typer.Option(help="meanfield: shared, diagonal, dense.")
    ] = None,
    beta: Annotated[float | None, typer.Option(help="meanfield readout N^-beta.")] = None,
    density: Annotated[
        float | None, typer.Option(help="elman: share of recurrent connections (sparse < 1).")
    ] = None,
    algo: Annotated[
        str | None,
        typer.Option(
            help="rtrl, rtrl:dense, tbptt, tbptt:TAU, tbptt:EVERY:TAU, uoro, snap1, snap2, rflo."
        ),
    ] = None,
    tau: Annotated[int | None, typer.Option(help="Truncation for --algo tbptt.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd, adam, rmsprop, adamw.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate alpha_0.")] = None,
    schedule: Annotated[
        str | None,
        typer.Option(help="constant, robbins-monro (alpha_0/(1+k/k0)^rho), cosine, exponential."),
    ] = None,
    k0: Annotated[float | None, typer.Option(help="Robbins-Monro k0.")] = None,
    rho: Annotated[float | None, typer.Option(help="Robbins-Monro rho in (1/2, 1].")] = None,
    clip: Annotated[float | None, typer.Option(help="Clip gradients to this global norm.")] = None,
    lr_backoff: Annotated[
        float | None,
        typer.Option(help="On divergence, rerun the chunk with the learning rate times this."),
    ] = None,
    max_backoffs: Annotated[int | None, typer.Option(help="Give up after this many.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the initial parameters.")] = None,
    chunk: Annotated[int | None, typer.Option(help="Steps per jitted chunk.")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 or float64.")] = None,
    checkpoint_every: Annotated[
        int, typer.Option(help="Checkpoint at the first chunk end after this many steps.", min=1)
    ] = 50_000,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out from its newest valid checkpoint.")
    ] = False,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip invalid rows (reported in summary.json) instead of stopping.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """`streamgrad train`: parse the options and call `jobs.train`. Long only because of its
    typed option declarations."""
    from streamgrad import jobs

    values = load_config_file(config) if config else {}
    values.update(
        _options(
            cell=cell,
            hidden=hidden,
            coupling=coupling,
            beta=beta,
            density=density,
            algo=algo,
            tau=tau,
            optimizer=optimizer,
            lr=lr,
            schedule=schedule,
            k0=k0,
            rho=rho,
            clip=clip,
            lr_backoff=lr_backoff,
            max_backoffs=max_backoffs,
            seed=seed,
            chunk=chunk,
            dtype=dtype,
        )
    )
    source = {"data": data, "target": target, "inputs": inputs, "task": task, "time": time}
    summary = jobs.train(
        out,
        values,
        {**source, "skip_invalid": skip_invalid},
        config_file=config,
        resume=resume,
        force=force,
        checkpoint_every=checkpoint_every,
        progress=True,
    )
    last = summary["last_10_percent"]
    shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k not in ("steps", "labelled"))
    console.print(f"last 10% of the stream: {shown}; {summary['steps_per_second']:.0f} steps/s")
    console.print(f"results in {out}/ (metrics.csv, summary.json, loss.png, checkpoints/)")


@app.command()
def gradcheck(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the rows as JSON to this file.")
    ] = None,
    steps: Annotated[int, typer.Option(help="Stream length.", min=1)] = 50,
    tolerance: Annotated[float, typer.Option(help="Fail (exit 1) above this error.")] = 1e-10,
) -> None:
    """Check every exact algorithm's accumulated gradient against BPTT in float64."""
    from streamgrad.gradcheck import run_gradcheck, table_text
    from streamgrad.reporting import write_json

    rows = run_gradcheck(steps=steps)
    Console(soft_wrap=True).print(table_text(rows, steps), markup=False, highlight=False)
    worst = max(float(row["max_relative_error"]) for row in rows)  # type: ignore[arg-type]
    if json_path:
        write_json(
            json_path,
            {
                "steps": steps,
                "tolerance": tolerance,
                "max_error": worst,
                "passed": worst <= tolerance,
                "rows": rows,
            },
        )
    if worst > tolerance:
        console.print(f"FAILED: max relative error {worst:.2e} > {tolerance:.0e}")
        raise typer.Exit(1)
    console.print(f"all {len(rows)} checks within {tolerance:.0e} (worst {worst:.2e})")


@experiment_app.command("rtrl-vs-tbptt")
def rtrl_vs_tbptt(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/rtrl-vs-tbptt"),
    steps: Annotated[int, typer.Option(help="Stream length.", min=100)] = 200_000,
    lags: Annotated[str, typer.Option(help="The two lags t1,t2 of the Add task.")] = "5,9",
    hidden: Annotated[int, typer.Option(help="Hidden units.", min=1)] = 32,
    cell: Annotated[str, typer.Option(help="Recurrent cell.")] = "elman",
    methods: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated algorithm specs (default: rtrl and three TBPTT windows)."
        ),
    ] = None,
    lrs: Annotated[str, typer.Option(help="Learning-rate grid.")] = "0.01,0.03,0.1",
    seed: Annotated[int, typer.Option(help="Seed of data and parameters.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """RTRL vs TBPTT (tau below and above the lags) on the Add task, online."""
    lag_values = _numbers(lags, int, "--lags")
    if len(lag_values) != 2 or not 0 < lag_values[0] < lag_values[1]:
        raise UserError(f"--lags: need two increasing positive lags t1,t2, got {lags!r}")
    options = {
        "steps": steps,
        "lags": (lag_values[0], lag_values[1]),
        "hidden": hidden,
        "cell": cell,
        "methods": [m.strip() for m in methods.split(",")] if methods else None,
        "learning_rates": tuple(_numbers(lrs, float, "--lrs")),
        "seed": seed,
    }
    _experiment("rtrl-vs-tbptt", out, options, force, "table.csv, metrics.csv, comparison.png")


@app.command()
def bench(
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the results as JSON to this file.")
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="Write the time-per-step plot (PNG).")] = None,
    cores: Annotated[
        str | None, typer.Option(help="Pin to these CPU cores, e.g. 0 or 0,1 (before JAX starts).")
    ] = None,
    quick: Annotated[bool, typer.Option(help="A tiny grid, for a smoke test.")] = False,
) -> None:
    """Time every cell x algorithm x N per online step against the (N x N) @ (N x P) bound."""
    from streamgrad.bench import bench_main

    pinned = _numbers(cores, int, "--cores") if cores else None
    bench_main(json_path, plot, pinned, quick)


@app.command(
    help="Online next mid-price move prediction on LOBSTER data: RNNs vs baselines, with report."
)
def lob(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/lob"),
    orderbook: Annotated[
        Path | None, typer.Option(help="LOBSTER orderbook file (default: the bundled AMZN day).")
    ] = None,
    message: Annotated[
        Path | None,
        typer.Option(
            help="LOBSTER message file (default: the bundled day's, or none with --orderbook)."
        ),
    ] = None,
    levels: Annotated[int | None, typer.Option(help="Book levels to use.", min=1)] = None,
    sampling: Annotated[Sampling, typer.Option(help="event or clock.")] = "event",
    dt: Annotated[float, typer.Option(help="Clock sampling interval (s).", min=1e-3)] = 1.0,
    label: Annotated[
        int,
        typer.Option(
            "--classes",
            "--label",
            help="2: direction of the next mid change; 3: down/unchanged/up at the next sample.",
            min=2,
            max=3,
        ),
    ] = 2,
    cells: Annotated[str, typer.Option(help="Comma-separated cells.")] = "elman",
    algos: Annotated[str, typer.Option(help="Comma-separated algorithm specs.")] = (
        "rtrl,tbptt:10,tbptt:1"
    ),
    hidden: Annotated[int, typer.Option(help="Hidden units.", min=1)] = 32,
    optimizer: Annotated[str, typer.Option(help="Optimizer (all methods).")] = "adam",
    lr: Annotated[float, typer.Option(help="Learning rate (all methods).")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed of the initial parameters.")] = 0,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip invalid rows (counted in summary.json) instead of stopping.")
    ] = False,
    checkpoint_every: Annotated[
        int, typer.Option(help="Checkpoint each RNN at the first chunk end after this many.", min=1)
    ] = 20_000,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out (same options) from its checkpoints.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """`streamgrad lob`: parse the options and call `jobs.lob`. Long only because of its typed
    option declarations."""
    from streamgrad import jobs
    from streamgrad.experiments.lob import table_text

    options = {
        "orderbook": str(orderbook) if orderbook else None,
        "message": str(message) if message else None,
        "levels": levels,
        "sampling": sampling,
        "dt": dt,
        "classes": label,
        "cells": cells,
        "algos": algos,
        "hidden": hidden,
        "optimizer": optimizer,
        "lr": lr,
        "seed": seed,
        "skip_invalid": skip_invalid,
    }
    summary = jobs.lob(
        out,
        options,
        resume=resume,
        force=force,
        checkpoint_every=checkpoint_every,
        progress=True,
    )
    Console(soft_wrap=True).print(table_text(summary["results"]))
    console.print(
        f"results in {out}/ (report.html, table.csv, metrics.csv, "
        "predictions.parquet, summary.json, plots, checkpoints/)"
    )


@experiment_app.command("alignment")
def alignment(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/alignment"),
    steps: Annotated[int, typer.Option(help="Stream length.", min=100)] = 50_000,
    hidden: Annotated[int, typer.Option(help="Hidden units.", min=1)] = 32,
    lr: Annotated[float, typer.Option(help="SGD learning rate.", min=1e-12)] = 0.01,
    density: Annotated[
        float,
        typer.Option(help="Share of recurrent connections (Elman); < 1 is sparse.", min=0.0),
    ] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of data and parameters.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Cosine and relative error of UORO, SnAp-1, SnAp-2, RFLO, TBPTT(1) against an exact RTRL
    shadow on the Add task."""
    if not 0.0 < density <= 1.0:
        raise UserError(f"--density: must be in (0, 1], got {density}")
    options = {"steps": steps, "hidden": hidden, "lr": lr, "density": density, "seed": seed}
    _experiment("alignment", out, options, force, "table.csv, loss.png")


def _experiment(name: str, out: Path, options: dict[str, Any], force: bool, files: str) -> None:
    """Run a registered experiment into `out`, print its table and where the results are."""
    import importlib

    from streamgrad import jobs

    summary = jobs.experiment(name, out, options, force=force, progress=True)
    module = importlib.import_module(jobs.EXPERIMENTS[name])
    Console(soft_wrap=True).print(module.table_text(summary))
    console.print(f"results in {out}/ (summary.json, {files})")


def _numbers(text: str, kind: type, option: str) -> list[Any]:
    try:
        return [kind(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"{option}: expected comma-separated numbers, got {text!r}") from None


def main(argv: list[str] | None = None) -> None:
    """Entry point: runs the app and turns user errors into one line and exit code 2."""
    try:
        app(args=argv, standalone_mode=False)
    except _EXITS as done:
        sys.exit(done.exit_code)
    except _ABORTS:
        sys.exit(130)
    except _USAGE_ERRORS as error:
        console.print(
            f"error: {error.format_message()}", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except UserError as error:
        console.print(f"error: {error}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


# typer raises click's exceptions (recent releases vendor click inside typer, so click may not
# be installed at all): find the base class of usage errors through typer's own BadParameter.
_EXITS = (typer.Exit,)
_ABORTS = (typer.Abort,)
_USAGE_ERRORS = tuple(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


if __name__ == "__main__":
    main()
