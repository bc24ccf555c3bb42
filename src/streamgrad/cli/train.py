"""`streamgrad train`: online training on a CSV/Parquet table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from streamgrad.cli.app import app, console, given
from streamgrad.config import load_config_file, lr_option

Task = Literal["regression", "classification", "auto"]


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
    contract: Annotated[
        float | None,
        typer.Option(
            help="elman, gru: rescale the recurrent matrices smoothly to spectral norm < G "
            "(G < 1: a contraction, the convergence theory's condition; try 0.9)."
        ),
    ] = None,
    algo: Annotated[
        str | None,
        typer.Option(
            help="rtrl, rtrl:dense, tbptt, tbptt:TAU, tbptt:EVERY:TAU, uoro, snap1, snap2, rflo; "
            "SPEC:every=K (not tbptt) applies the sum of K gradients every K steps."
        ),
    ] = None,
    tau: Annotated[int | None, typer.Option(help="Truncation for --algo tbptt.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd, adam, rmsprop, adamw.")] = None,
    lr: Annotated[
        str | None,
        typer.Option(
            help="Learning rate alpha_0; several, comma-separated (1e-4,1e-3,1e-2), run one copy "
            "per rate and predict with the copy of lowest running loss (an ensemble)."
        ),
    ] = None,
    lr_half_life: Annotated[
        float | None, typer.Option(help="Ensemble: half-life (steps) of the running losses.")
    ] = None,
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
    standardize: Annotated[
        bool | None,
        typer.Option(
            "--standardize/--no-standardize",
            help="Standardise the inputs online: z-scores with the running mean and variance "
            "of the earlier rows.",
        ),
    ] = None,
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
        given(
            cell=cell,
            hidden=hidden,
            coupling=coupling,
            beta=beta,
            density=density,
            contract=contract,
            algo=algo,
            tau=tau,
            optimizer=optimizer,
            lr=lr_option(lr),
            lr_half_life=lr_half_life,
            schedule=schedule,
            k0=k0,
            rho=rho,
            clip=clip,
            lr_backoff=lr_backoff,
            max_backoffs=max_backoffs,
            seed=seed,
            chunk=chunk,
            dtype=dtype,
            standardize=standardize,
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
    losses = ", ".join(
        f"{name} {metrics['last_10_percent']['loss']:.4g}"
        for name, metrics in summary["baselines"].items()
    )
    skill = summary["skill"]
    console.print(
        f"baselines, loss over the last 10%: {losses}; skill {skill['last_10_percent']:.3f} "
        f"(1 - loss / {skill['best_baseline']}'s)"
    )
    if "lr_ensemble" in summary:
        chosen = summary["lr_ensemble"]
        rates = zip(chosen["lrs"], chosen["chosen_fraction"], strict=True)
        shares = ", ".join(f"{lr:g} {share:.0%}" for lr, share in rates)
        final = chosen["final_chosen_lr"]
        console.print(f"learning rates chosen: {shares} of the steps; at the end {final:g}")
    console.print(f"results in {out}/ (metrics.csv, summary.json, loss.png, checkpoints/)")
