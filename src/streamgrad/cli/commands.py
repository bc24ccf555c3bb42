"""`streamgrad lob | gradcheck | bench | sweep`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from streamgrad.cli.app import app, console, numbers
from streamgrad.config import lr_option
from streamgrad.errors import UserError

Sampling = Literal["event", "clock"]


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
    algos: Annotated[
        str,
        typer.Option(
            help="Comma-separated algorithm specs (default: pairs at equal update frequency)."
        ),
    ] = "rtrl,tbptt:1:10,rtrl:every=10,tbptt:10",
    hidden: Annotated[int, typer.Option(help="Hidden units.", min=1)] = 32,
    optimizer: Annotated[str, typer.Option(help="Optimizer (all methods).")] = "adam",
    lr: Annotated[
        str,
        typer.Option(
            help="Learning rate (all methods); several, comma-separated, run each method as a "
            "learning-rate ensemble (the default), which chooses the rate online."
        ),
    ] = "1e-4,3e-4,1e-3,3e-3,1e-2",
    lr_half_life: Annotated[
        float | None,
        typer.Option(help="Ensemble: half-life (steps) of the running losses (default 100)."),
    ] = None,
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
        "lr": lr_option(lr),
        "seed": seed,
        "skip_invalid": skip_invalid,
        **({} if lr_half_life is None else {"lr_half_life": lr_half_life}),
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

    pinned = numbers(cores, int, "--cores") if cores else None
    bench_main(json_path, plot, pinned, quick)


@app.command()
def sweep(
    spec: Annotated[
        Path, typer.Argument(help="TOML file: command, base options, grid and/or runs.")
    ],
    out: Annotated[Path, typer.Option(help="Sweep folder; the same command again resumes it.")],
    workers: Annotated[
        int | None,
        typer.Option(
            help="Local Dask worker processes (default: one per core; 0: in this process).", min=0
        ),
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Use the Dask cluster at this address (tcp://HOST:PORT).")
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(help="Results column for the table and plot.png (default: the spec's)."),
    ] = None,
) -> None:
    """Run train, lob or an experiment over a grid of options, locally or on a Dask cluster;
    resumable. Exit code 2 if a run failed."""
    from streamgrad.sweep.driver import run_sweep
    from streamgrad.sweep.progress import failures_table, over_seeds_table

    result = run_sweep(
        spec, out, workers=workers, scheduler=scheduler, metric=metric, console=console
    )
    if result.summary["done"]:
        Console(soft_wrap=True).print(over_seeds_table(result.summary))
    console.print(f"results in {out}/ (results.parquet, results.csv, summary.json, plot.png)")
    if result.failed:
        Console(soft_wrap=True).print(failures_table(result.table))
        raise UserError(f"{result.failed} of {len(result.table)} runs failed (table above)")
