"""`streamgrad experiment NAME`: the named, reproducible studies (each writes summary.json,
CSV/Parquet and PNG into its --out folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from streamgrad.cli.app import experiment_app, numbers, parse_sizes, run_experiment
from streamgrad.errors import UserError

Coupling = Literal["shared", "diagonal", "dense"]
# Where an experiment's tasks run (sweep/executor.py); the numbers are the same either way.
Workers = Annotated[
    int | None,
    typer.Option(help="Local Dask worker processes for the tasks (0: in this process).", min=0),
]
Scheduler = Annotated[
    str | None, typer.Option(help="Run the tasks on the Dask cluster at tcp://HOST:PORT.")
]


@experiment_app.command("rtrl-vs-tbptt")
def rtrl_vs_tbptt(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/rtrl-vs-tbptt"),
    steps: Annotated[int, typer.Option(help="Stream length.", min=100)] = 200_000,
    lags: Annotated[str, typer.Option(help="The two lags t1,t2 of the Add task.")] = "5,9",
    hidden: Annotated[int, typer.Option(help="Hidden units.", min=1)] = 32,
    cell: Annotated[str, typer.Option(help="Recurrent cell.")] = "elman",
    windows: Annotated[
        str | None,
        typer.Option(
            help="Windows tau, comma-separated: RTRL vs TBPTT(1, tau) and RTRL(every tau) vs "
            "TBPTT(tau) (default: below, between and above the lags)."
        ),
    ] = None,
    lrs: Annotated[
        str, typer.Option(help="Learning rates of each method's online ensemble.")
    ] = "0.01,0.03,0.1",
    seed: Annotated[int, typer.Option(help="Seed of data and parameters.")] = 0,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """RTRL vs TBPTT at equal update frequency (tau below, between and above the lags) on
    the Add task, online, each method's learning rate chosen online by the ensemble."""
    lag_values = numbers(lags, int, "--lags")
    if len(lag_values) != 2 or not 0 < lag_values[0] < lag_values[1]:
        raise UserError(f"--lags: need two increasing positive lags t1,t2, got {lags!r}")
    if windows and min(numbers(windows, int, "--windows")) < 1:
        raise UserError(f"--windows: every tau must be >= 1, got {windows!r}")
    options = {
        "steps": steps,
        "lags": (lag_values[0], lag_values[1]),
        "hidden": hidden,
        "cell": cell,
        "windows": tuple(numbers(windows, int, "--windows")) if windows else None,
        "learning_rates": tuple(numbers(lrs, float, "--lrs")),
        "seed": seed,
    }
    run_experiment("rtrl-vs-tbptt", out, options, force, "table.csv, metrics.csv, comparison.png")


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
    run_experiment("alignment", out, options, force, "table.csv, loss.png")


@experiment_app.command("rtrl-convergence")
def rtrl_convergence(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/rtrl-convergence"),
    quick: Annotated[bool, typer.Option(help="Small sizes (under 2 minutes).")] = False,
    seeds: Annotated[int, typer.Option(help="Seeds (initial parameters and stream).", min=1)] = 5,
    coupling: Annotated[
        Coupling, typer.Option(help="meanfield coupling: shared, diagonal, dense.")
    ] = "shared",
    hidden: Annotated[int, typer.Option(help="Hidden units N.", min=1)] = 32,
    taus: Annotated[str, typer.Option(help="TBPTT windows, comma-separated.")] = "1,2,3",
    workers: Workers = 0,
    scheduler: Scheduler = None,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Online RTRL reaches a stationary point of the long-run loss, TBPTT(tau) does not:
    |grad L(theta_k)| and L(theta_k) against k, and TBPTT's bias against tau."""
    options = {
        "quick": quick,
        "seeds": seeds,
        "coupling_kind": coupling,
        "hidden": hidden,
        "taus": tuple(numbers(taus, int, "--taus")),
        "workers": workers,
        "scheduler": scheduler,
    }
    run_experiment("rtrl-convergence", out, options, force, "convergence.csv, bias.csv, *.png")


@experiment_app.command("rtrl-fixed-point")
def rtrl_fixed_point(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/rtrl-fixed-point"),
    quick: Annotated[bool, typer.Option(help="Small sizes (under 2 minutes).")] = False,
    seeds: Annotated[int, typer.Option(help="Seeds (parameters and data).", min=1)] = 5,
    coupling: Annotated[
        Coupling, typer.Option(help="meanfield coupling: shared, diagonal, dense.")
    ] = "shared",
    hidden: Annotated[int, typer.Option(help="Hidden units N.", min=1)] = 32,
    workers: Workers = 0,
    scheduler: Scheduler = None,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """With theta frozen, chains of (S, J) from different starts merge geometrically and the
    laws of (S, J) over windows converge (Wasserstein-1)."""
    options = {
        "quick": quick,
        "seeds": seeds,
        "coupling_kind": coupling,
        "hidden": hidden,
        "workers": workers,
        "scheduler": scheduler,
    }
    run_experiment("rtrl-fixed-point", out, options, force, "coupling.csv, windows.csv, *.png")


@experiment_app.command("kernel-limit-hidden")
def kernel_limit_hidden(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/kernel-limit-hidden"),
    sizes: Annotated[
        str, typer.Option(help="Comma-separated hidden sizes N.")
    ] = "100,1000,10000,100000,1000000",
    steps: Annotated[int, typer.Option(help="Steps K of every data path.", min=2)] = 50_000,
    paths: Annotated[
        int, typer.Option(help="Data paths per N (each with its own parameters), at most.", min=1)
    ] = 100,
    budget: Annotated[
        float, typer.Option(help="Cap on paths x N x K per size (unit-steps).", min=1.0)
    ] = 5e11,
    seed: Annotated[int, typer.Option(help="Seed of the first path (path l: seed + l).")] = 0,
    quick: Annotated[bool, typer.Option(help="Small sizes and paths (under 2 minutes).")] = False,
    workers: Workers = 0,
    scheduler: Scheduler = None,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Untrained shared-coupling network for N = 1e2 ... 1e6 against its limit (the project's
    reconstruction): memory error, hidden-unit histograms and KS distance, time averages."""
    options = {
        "sizes": parse_sizes(sizes),
        "steps": steps,
        "paths": paths,
        "budget": budget,
        "seed": seed,
        "quick": quick,
        "workers": workers,
        "scheduler": scheduler,
    }
    run_experiment(
        "kernel-limit-hidden", out, options, force, "per_size.csv, paths.csv, histograms.png"
    )


@experiment_app.command("kernel-limit-training")
def kernel_limit_training(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path(
        "results/kernel-limit-training"
    ),
    sizes: Annotated[
        str, typer.Option(help="Comma-separated hidden sizes N.")
    ] = "100,1000,10000,100000",
    seeds: Annotated[int, typer.Option(help="Parameter seeds per N.", min=1)] = 3,
    horizon: Annotated[float, typer.Option(help="Training time T (N T steps).", min=1e-9)] = 1.0,
    alpha: Annotated[float, typer.Option(help="SGD step alpha / N.", min=1e-12)] = 1.0,
    samples: Annotated[
        int, typer.Option(help="Stationary windows M that stand for E_pi.", min=1)
    ] = 2_000,
    quick: Annotated[bool, typer.Option(help="Small sizes (under 2 minutes).")] = False,
    workers: Workers = 0,
    scheduler: Scheduler = None,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Shared-coupling network (beta = 1/2) trained online with exact RTRL against its kernel
    limit (the project's reconstruction): NTK error and drift, memory paths, kernel ODE."""
    options = {
        "sizes": parse_sizes(sizes),
        "seeds": seeds,
        "horizon": horizon,
        "alpha": alpha,
        "samples": samples,
        "quick": quick,
        "workers": workers,
        "scheduler": scheduler,
    }
    run_experiment(
        "kernel-limit-training", out, options, force, "runs.csv, outputs.parquet, convergence.png"
    )


@experiment_app.command("actor-critic")
def actor_critic(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/actor-critic"),
    env: Annotated[
        str,
        typer.Option(
            help="random (6 states x 3 actions), gridworld, or a gymnasium id with a transition "
            "table (FrozenLake-v1, CliffWalking-v1, Taxi-v4)."
        ),
    ] = "random",
    sizes: Annotated[str, typer.Option(help="Hidden units N, comma-separated.")] = "100,1000,10000",
    seeds: Annotated[str, typer.Option(help="Seeds, comma-separated.")] = "0,1,2",
    t_max: Annotated[
        float | None,
        typer.Option(help="Horizon in ODE time t = k / N (default 10 random MDP, else 50).", min=0),
    ] = None,
    quick: Annotated[bool, typer.Option(help="N = 100, 1000, two seeds, short horizon.")] = False,
    workers: Workers = 0,
    scheduler: Scheduler = None,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Online neural actor-critic on a finite MDP against its infinite-width ODE (the project's
    reconstruction): sup distance against N, critic error to the exact Q, objective."""
    options = {
        "env": env,
        "sizes": parse_sizes(sizes),
        "seeds": tuple(numbers(seeds, int, "--seeds")),
        "quick": quick,
        "workers": workers,
        "scheduler": scheduler,
        **({} if t_max is None else {"t_max": t_max}),
    }
    run_experiment(
        "actor-critic", out, options, force, "metrics.csv, ode_distance.png, training.png"
    )


@experiment_app.command("real-series")
def real_series(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("results/real-series"),
    series: Annotated[
        str, typer.Option(help="Series, comma-separated: co2, water-flow, elnino.")
    ] = "co2,water-flow,elnino",
    seeds: Annotated[int, typer.Option(help="Seeds (initial parameters).", min=1)] = 3,
    hidden: Annotated[int, typer.Option(help="Hidden units N.", min=1)] = 32,
    every: Annotated[int, typer.Option(help="K of the every-K pair.", min=2)] = 10,
    contract: Annotated[
        float, typer.Option(help="G of the contraction guard runs.", min=1e-6)
    ] = 0.9,
    lrs: Annotated[str, typer.Option(help="Learning rates, comma-separated.")] = (
        "1e-4,3e-4,1e-3,3e-3,1e-2"
    ),
    half_life: Annotated[
        float | None,
        typer.Option(
            help="Half-life (steps) of the ensemble's running losses (default 100).", min=1.0
        ),
    ] = None,
    quick: Annotated[bool, typer.Option(help="elnino, one seed, N = 8, Elman only.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """RTRL and TBPTT at equal update frequency on real series (statsmodels, river), each
    learning rate alone and as the online ensemble, with and without the contraction guard,
    against naive forecasters and river's SNARIMAX (needs streamgrad[series])."""
    options = {
        "series": tuple(name.strip() for name in series.split(",") if name.strip()),
        "seeds": seeds,
        "hidden": hidden,
        "every": every,
        "contract": contract,
        "lrs": tuple(numbers(lrs, float, "--lrs")),
        "quick": quick,
        **({} if half_life is None else {"half_life": half_life}),
    }
    run_experiment("real-series", out, options, force, "table.csv, runs.csv, scores.png")


@experiment_app.command("recurrent-actor-critic")
def recurrent_actor_critic(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path(
        "results/recurrent-actor-critic"
    ),
    corridor: Annotated[int, typer.Option(help="T-maze corridor length.", min=1)] = 10,
    seeds: Annotated[str, typer.Option(help="Seeds, comma-separated.")] = "0,1,2,3,4",
    steps: Annotated[int, typer.Option(help="Online steps per run.", min=1)] = 15_000,
    algos: Annotated[
        str, typer.Option(help="Comma-separated: engine specs updating every step, memoryless.")
    ] = "rtrl,tbptt:1:3,memoryless",
    hidden: Annotated[int, typer.Option(help="GRU units of actor and critic.", min=1)] = 32,
    symbols: Annotated[int, typer.Option(help="Distractor symbols (2 are cues).", min=2)] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate.", min=0.0)] = 1e-3,
    quick: Annotated[
        bool, typer.Option(help="Corridor 4, 2 symbols, 8 units, 8,000 steps, 2 seeds.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Overwrite a non-empty output folder.")] = False,
) -> None:
    """Recurrent online actor-critic on the T-maze: exact RTRL against TBPTT(1, tau) and a
    memoryless agent, success rate against steps over seeds."""
    options = {
        "corridor": corridor,
        "seeds": tuple(numbers(seeds, int, "--seeds")),
        "steps": steps,
        "algos": tuple(a.strip() for a in algos.split(",") if a.strip()),
        "hidden": hidden,
        "symbols": symbols,
        "lr": lr,
        "quick": quick,
    }
    run_experiment("recurrent-actor-critic", out, options, force, "curves.csv, success.png")
