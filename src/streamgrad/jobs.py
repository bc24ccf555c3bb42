"""One library function per command: what `streamgrad train | lob | experiment NAME` do, with
their options as plain values, so the CLI stays a thin parser and sweeps run the same code.

    run_job(command, options, out, resume=..., progress=...) -> summary dict

`command` is "train", "lob" or "experiment NAME"; `options` uses the command's option names
(as on the command line, with underscores, or as in a --config file). User errors raise
`UserError` (one line).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streamgrad.config import LobOptions, TrainConfig, load_config_file, validate
from streamgrad.errors import DivergenceError, UserError
from streamgrad.runs import RunFolder, config_hash, file_sha256, refuse_changes

if TYPE_CHECKING:
    from streamgrad.data.batches import TableStream

# `train`'s options that say where the data is, as opposed to the run's TrainConfig.
SOURCE_KEYS = ("data", "target", "inputs", "task", "time", "skip_invalid")
EXPERIMENTS = {
    "rtrl-vs-tbptt": "streamgrad.experiments.rtrl_vs_tbptt",
    "alignment": "streamgrad.experiments.alignment",
    "actor-critic": "streamgrad.experiments.actor_critic",
    "recurrent-actor-critic": "streamgrad.experiments.recurrent_actor_critic",
    "kernel-limit-hidden": "streamgrad.experiments.kernel_limit_hidden",
    "kernel-limit-training": "streamgrad.experiments.kernel_limit_training",
    "rtrl-convergence": "streamgrad.experiments.rtrl_convergence",
    "rtrl-fixed-point": "streamgrad.experiments.rtrl_fixed_point",
    "real-series": "streamgrad.experiments.real_series",
}


def train(
    out: Path,
    values: Mapping[str, Any],
    source: Mapping[str, Any],
    *,
    config_file: Path | None = None,
    resume: bool = False,
    force: bool = False,
    checkpoint_every: int = 50_000,
    progress: bool = False,
) -> dict[str, Any]:
    """Online training on a CSV/Parquet table into the run folder `out`.

    `values`: TrainConfig options given (config file merged with command-line values);
    `source`: the SOURCE_KEYS (None where not given). With `resume`, both must repeat the
    stored run's, and the stored ones are used.
    The table is read in batches as the learner consumes them (`stream_run.train_table`),
    in constant memory at any length.
    Writes run.json, checkpoints/, steps.parquet, metrics.csv, loss.png and summary.json;
    returns the summary.
    """
    from streamgrad.stream_run import check_table, train_table

    folder = RunFolder.reopen(out) if resume else None
    values, source = _train_options(folder, values, source)
    settings = validate(TrainConfig, dict(values), str(config_file) if config_file else "option")
    data = Path(source["data"])
    table = _read_source(source)
    expect = {"config_hash": config_hash(settings.model_dump()), "data_sha256": file_sha256(data)}
    if folder is None:
        check_table(settings, table)
        record = {"config": settings.model_dump(), "options": dict(values), "data": source}
        folder = RunFolder.start(out, {**record, **expect}, force=force)
    try:
        result = train_table(
            settings,
            table,
            folder.path,
            progress=progress,
            checkpoint_every=checkpoint_every,
            resume=resume,
            expect=expect,
        )
    except DivergenceError as error:
        diverged = {**error.record(), "last_checkpoint": str(folder.checkpoints)}
        folder.write_summary({"config": settings.model_dump(), "diverged": diverged})
        raise
    data_summary = _data_summary(table, source, expect["data_sha256"])
    summary = {**result.summary, "data": data_summary, "resumed": resume}
    if isinstance(settings.lr, tuple):  # a learning-rate ensemble: what it chose
        from streamgrad.ensemble import ensemble_summary

        summary["lr_ensemble"] = ensemble_summary(result.state, settings.lr, settings.lr_half_life)
    return folder.write_summary(summary)


def _read_source(source: Mapping[str, Any]) -> TableStream:
    """The validated stream, read in batches, that `source` (the SOURCE_KEYS) names."""
    from streamgrad.data.batches import TableStream

    inputs = source["inputs"]
    return TableStream(
        Path(source["data"]),
        source["target"],
        [c.strip() for c in inputs.split(",")] if inputs else None,
        task=source["task"],
        skip_invalid=source["skip_invalid"],
        time=source["time"],
    )


def _data_summary(table: TableStream, source: Mapping[str, Any], sha256: str) -> dict[str, Any]:
    """What summary.json says of the data a run was trained on."""
    return {
        "file": str(source["data"]),
        "sha256": sha256,
        "target": source["target"],
        "time": source["time"],
        "inputs": list(table.input_names),
        "rows": table.position.rows,
        "n_classes": table.n_classes,
        "skipped_rows": table.position.skipped,
        "first_skipped_rows": list(table.position.first_skipped),
    }


def _train_options(
    folder: RunFolder | None, values: Mapping[str, Any], source: Mapping[str, Any]
) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """(config values, data source) of a new run, or of the run in `folder` after refusing
    any given option that differs from it (`--skip-invalid` is taken from the run)."""
    if folder is None:
        if source.get("data") is None or source.get("target") is None:
            raise UserError("train needs --data and --target (or --resume)")
        complete = {key: source.get(key) for key in SOURCE_KEYS}
        complete.update(
            data=str(source["data"]),
            task=source.get("task") or "auto",
            skip_invalid=bool(source.get("skip_invalid")),
        )
        return values, complete
    given = {k: v for k, v in source.items() if v is not None and k != "skip_invalid"}
    if given.get("task") == "auto":
        del given["task"]
    if "data" in given:
        given["data"] = str(given["data"])
    refuse_changes(values, folder.record["config"])
    refuse_changes(given, folder.record["data"])
    return folder.record["options"], {key: folder.record["data"].get(key) for key in SOURCE_KEYS}


def lob(
    out: Path,
    options: Mapping[str, Any],
    *,
    resume: bool = False,
    force: bool = False,
    checkpoint_every: int = 20_000,
    progress: bool = False,
) -> dict[str, Any]:
    """Online next mid-price move prediction on a LOBSTER day (the bundled AMZN day when
    `orderbook` is None): RNNs against baselines, with report.html. `options` are the `lob`
    command's (orderbook, message, levels, sampling, dt, classes, cells, algos, hidden,
    optimizer, lr, lr_half_life, seed, skip_invalid)."""
    from streamgrad.experiments import lob as experiment
    from streamgrad.resources import bundled_lobster_day

    settings = validate(LobOptions, dict(options), "option")
    for cell in settings.cell_list:  # validate every run's settings before any work starts
        for algo in settings.algo_list:
            shared = {"hidden": settings.hidden, "optimizer": settings.optimizer, "lr": settings.lr}
            shared["lr_half_life"] = settings.lr_half_life
            validate(TrainConfig, {"cell": cell, "algo": algo, **shared}, "option")
    with ExitStack() as stack:
        orderbook, message = settings.orderbook, settings.message
        if orderbook is None:
            orderbook, bundled_message = stack.enter_context(bundled_lobster_day())
            message = message or bundled_message
        record = {**settings.model_dump(), "orderbook": str(orderbook)}
        record["message"] = message and str(message)
        folder = RunFolder.open(out, record, resume=resume, force=force)
        return experiment.run(
            folder.path,
            orderbook=Path(orderbook),
            message=Path(message) if message else None,
            levels=settings.levels,
            sampling=settings.sampling,
            dt=settings.dt,
            classes=settings.classes,
            cells=settings.cell_list,
            algorithms=settings.algo_list,
            hidden=settings.hidden,
            optimizer=settings.optimizer,
            lr=settings.lr,
            lr_half_life=settings.lr_half_life,
            seed=settings.seed,
            skip_invalid=settings.skip_invalid,
            progress=progress,
            checkpoint_every=checkpoint_every,
            resume=resume,
        )


def experiment(
    name: str,
    out: Path,
    options: Mapping[str, Any],
    *,
    resume: bool = False,
    force: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the named experiment (a key of EXPERIMENTS) with keyword `options` into `out`;
    run.json records the options (a rerun with `resume` must repeat them)."""
    if name not in EXPERIMENTS:
        raise UserError(f"unknown experiment {name!r}; use one of {', '.join(EXPERIMENTS)}")
    from streamgrad.sweep.executor import EXECUTOR_OPTIONS

    module = importlib.import_module(EXPERIMENTS[name])
    record = {k: v for k, v in options.items() if k not in EXECUTOR_OPTIONS}  # where, not what
    folder = RunFolder.open(
        out, {"experiment": name, **record}, resume=resume, force=force or resume
    )
    return module.run(folder.path, **options, progress=progress)


def run_job(
    command: str,
    options: Mapping[str, Any],
    out: Path,
    *,
    resume: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Run one command ("train", "lob" or "experiment NAME") with `options` into `out`, or
    continue it from its checkpoints (`resume`); returns its summary. The entry point of
    sweeps."""
    options = dict(options)
    if command == "train":
        values = load_config_file(Path(options.pop("config"))) if "config" in options else {}
        checkpoint_every = int(options.pop("checkpoint_every", 50_000))
        source = {key: options.pop(key, None) for key in SOURCE_KEYS}
        values.update(options)
        return train(
            out,
            values,
            source,
            resume=resume,
            checkpoint_every=checkpoint_every,
            progress=progress,
        )
    if command == "lob":
        checkpoint_every = int(options.pop("checkpoint_every", 20_000))
        return lob(
            out, options, resume=resume, checkpoint_every=checkpoint_every, progress=progress
        )
    name = command.removeprefix("experiment").strip()
    if command.startswith("experiment ") and name:
        return experiment(name, out, options, resume=resume, progress=progress)
    raise UserError(f"unknown command {command!r}; use train, lob or 'experiment NAME'")
