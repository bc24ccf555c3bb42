"""`streamgrad rl train`: the recurrent online actor-critic on a gymnasium environment or the
T-maze (`streamgrad.rl.train_run`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streamgrad.cli.app import app, console

rl_app = typer.Typer(no_args_is_help=True, help="Online reinforcement learning with RTRL.")
app.add_typer(rl_app, name="rl")


@rl_app.command(
    help="Train a recurrent actor-critic online, one step at a time along one trajectory; "
    "writes metrics.csv, summary.json, learning.png and checkpoints/ (--resume continues)."
)
def train(
    env: Annotated[
        str,
        typer.Option(
            help="gymnasium id (FrozenLake-v1, CartPole-v1, ...), tmaze:L (the T-maze with a "
            "corridor of L), or pomdp:ID[:I,J] (ID without observation coordinates I, J)."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder (must not exist unless --force).")],
    steps: Annotated[int, typer.Option(help="Online steps in all (with --resume too).")] = 20_000,
    hidden: Annotated[int, typer.Option(help="Hidden units of actor and critic.", min=1)] = 16,
    cell: Annotated[str, typer.Option(help="Recurrent cell: gru, elman, diagonal, ...")] = "gru",
    algo: Annotated[
        str, typer.Option(help="rtrl, tbptt:1:TAU, uoro, snap1, rflo, ... or memoryless.")
    ] = "rtrl",
    lr: Annotated[float, typer.Option(help="Adam learning rate of actor and critic.")] = 2e-3,
    gamma: Annotated[float, typer.Option(help="Discount factor.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of parameters, actions, environment.")] = 0,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out (same options) from its checkpoint.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Parse the options and call `rl.train_run.train_run`."""
    from streamgrad.rl.train_run import train_run

    options = {
        "env": env,
        "steps": steps,
        "hidden": hidden,
        "cell": cell,
        "algo": algo,
        "lr": lr,
        "gamma": gamma,
        "seed": seed,
    }
    summary = train_run(out, options, resume=resume, force=force, progress=True)
    Console(soft_wrap=True).print(
        f"{summary['steps']} steps, {summary['episodes']} episodes; last 10%: mean return "
        f"{summary['mean_return_last']}, success rate {summary['success_rate_last']}"
    )
    console.print(f"results in {out}/ (summary.json, metrics.csv, learning.png, checkpoints/)")
