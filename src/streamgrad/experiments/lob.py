"""Online next-mid-price-move prediction on LOBSTER data: RNNs (RTRL, TBPTT) against baselines.

Protocol (prequential, no look-ahead):
- Features of sample k use book/message rows up to k only, standardised with strictly-past
  running moments (`data/lob_features.py`).
- Label y_k: direction (0 down, 1 up) of the next mid-price change after sample k, or with
  `classes=3` the move to the next sample (down / unchanged / up).
- At step k every method first predicts y_k, then learns from the labels revealed by then.
  The 2-class label y_k is revealed only when the mid next changes; we let the method learn
  from y_k at step k exactly when the mid changes at k+1 (then y_k is known before y_{k+1}
  is predicted), and mark it unrevealed (-1, no loss) otherwise. Learning from y_k at step k
  regardless would leak: y_{k+1} = y_k whenever the mid does not move at k+1.
- Every method sees the same stream and features; parameters are seeded; the evaluation
  covers every labelled sample (whole day, and its second half).
- Each RNN checkpoints into checkpoints/<method>/ (config and data hashes checked on load), so
  `resume=True` continues an interrupted run exactly: finished methods are read back,
  the interrupted one continues from its newest valid checkpoint.
Baselines (`baselines.py`, the same predict-then-learn protocol): online multinomial logistic
regression on the same features with the same optimizer and learning rate, trained by the
networks' `OnlineLearner`; previous move (direction of the last mid change seen, with a running
hit rate as its confidence); majority class (running counts of revealed labels).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from streamgrad.baselines import MajorityClass, PreviousMove, logistic_regression, prequential
from streamgrad.checkpoint import latest_step
from streamgrad.config import TrainConfig
from streamgrad.data.dataset import Stream
from streamgrad.data.lob_features import FeatureFrame, lob_stream
from streamgrad.data.lobster import LobsterDay, read_lobster
from streamgrad.ensemble import DEFAULT_HALF_LIFE, base_lr, with_lrs
from streamgrad.errors import UserError
from streamgrad.experiments.lob_report import write_plots, write_report
from streamgrad.experiments.lr_choice import ensemble_choice
from streamgrad.metrics import ClassificationMetrics
from streamgrad.optim import make_optimizer, make_schedule
from streamgrad.reporting import versions, write_json
from streamgrad.runs import config_hash, file_sha256
from streamgrad.training import train_on_stream

CHUNK_EVENTS = 2_500
MIN_SAMPLES = 10


def revealed_targets(labels: np.ndarray, mid: np.ndarray, classes: int) -> np.ndarray:
    """Training targets: y_k where it is known at step k+1, else -1 (see module docstring)."""
    if classes == 3:
        return labels
    changes_next = np.r_[mid[1:] != mid[:-1], False]
    return np.where(changes_next, labels, -1)


def evaluate(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Classification metrics of logits (T, K) over the whole day and over its second half."""
    half = len(labels) // 2
    whole = ClassificationMetrics().update(logits, labels).get()
    second = ClassificationMetrics().update(logits[half:], labels[half:]).get()
    return {
        **{f"{k}_day": v for k, v in whole.items() if k != "labelled"},
        **{f"{k}_last_half": v for k, v in second.items() if k != "labelled"},
    }


def chunk_metrics(
    predictions: dict[str, np.ndarray], labels: np.ndarray, frame: FeatureFrame
) -> pd.DataFrame:
    """Classification metrics of every method per chunk of CHUNK_EVENTS samples."""
    rows = []
    for method, logits in predictions.items():
        for begin in range(0, len(labels), CHUNK_EVENTS):
            end = min(begin + CHUNK_EVENTS, len(labels))
            metrics = ClassificationMetrics().update(logits[begin:end], labels[begin:end])
            rows.append(
                {
                    "method": method,
                    "first_sample": begin,
                    "last_sample": end - 1,
                    "time": float(frame.time[end - 1]) if frame.time is not None else None,
                    **metrics.get(),
                }
            )
    return pd.DataFrame(rows)


def rnn_predictions(
    out: Path,
    training: Stream,
    stream_key: str,
    configs: dict[str, TrainConfig],
    *,
    labels: np.ndarray,
    progress: bool,
    checkpoint_every: int,
    resume: bool,
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Outputs (T, K) and facts (steps per second, steps between updates, the learning rate:
    for an ensemble the one chosen most often) of one online run per labelled config, each
    checkpointing into out/checkpoints/<label>/ and resuming from there when it can; the
    progress bars show the log-loss against the evaluation `labels` (T,), as the table does."""
    predictions, facts = {}, {}
    for label, config in configs.items():
        folder = out / "checkpoints" / label.replace(" ", "-").replace(":", "_")
        result = train_on_stream(
            config,
            training,
            label=label,
            progress=progress,
            checkpoints=folder,
            checkpoint_every=checkpoint_every,
            resume=resume and latest_step(folder) is not None,
            expect={"config_hash": config_hash(config.model_dump()), "stream": stream_key},
            scored_by=labels,
        )
        predictions[label] = result.history.outputs
        facts[label] = {
            "steps_per_second": result.summary["steps_per_second"],
            "updates_every": result.summary["updates_every"],
            "lr": learning_rate_used(config.lr, result.state),
        }
    return predictions, facts


def learning_rate_used(lr: float | tuple[float, ...], state: Any) -> float:
    """The learning rate of a run: `lr` itself, or for an ensemble of several rates the one
    it chose most often."""
    return ensemble_choice(lr, state)["chosen_most"] if isinstance(lr, tuple) else lr


def baseline_predictions(
    training: Stream,
    mid: np.ndarray,
    n_classes: int,
    *,
    labels: np.ndarray,
    optimizer: str,
    lr: float | tuple[float, ...],
    lr_half_life: float,
    chunk: int,
    progress: bool,
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """Outputs (T, K) of the baselines on the training stream (labels revealed as for the
    RNNs), mid (T,) the mid price, and the logistic regression's facts (its learning rate);
    it learns with the RNNs' optimizer and constant learning rate (or, for several rates,
    their online ensemble, as the RNNs), in chunks of `chunk` steps."""
    schedule = make_schedule("constant", base_lr(lr))
    learner, state = logistic_regression(
        training.input_dim, n_classes, make_optimizer(optimizer, schedule)
    )
    learner = with_lrs(learner, lr, lr_half_life)
    state = learner.init(state.params)
    state, history = learner.fit(
        state,
        training.inputs,
        training.targets,
        chunk_size=chunk,
        progress=progress,
        description="logistic regression",
        scored_by=labels,
    )
    outputs = {
        "logistic regression": history.outputs,
        "previous move": prequential(PreviousMove(n_classes), mid, training.targets),
        "majority class": prequential(MajorityClass(n_classes), training.inputs, training.targets),
    }
    facts = {"logistic regression": {"updates_every": 1, "lr": learning_rate_used(lr, state)}}
    return outputs, facts


def write_predictions(
    out: Path,
    predictions: dict[str, np.ndarray],
    facts: dict[str, dict[str, Any]],
    training: Stream,
    labels: np.ndarray,
    frame: FeatureFrame,
) -> pd.DataFrame:
    """table.csv (day metrics per method), metrics.csv (per chunk), predictions.parquet (the
    probability of an up move per sample and method) and the plots; returns the table."""
    table = pd.DataFrame(
        [
            {"method": m, **evaluate(p, labels), **facts.get(m, {"updates_every": 1})}
            for m, p in predictions.items()
        ]
    )
    table.to_csv(out / "table.csv", index=False)
    chunk_metrics(predictions, labels, frame).to_csv(out / "metrics.csv", index=False)
    per_sample = pd.DataFrame(
        {"time": frame.time, "mid": frame.mid, "label": labels, "revealed_label": training.targets}
    )
    for method, logits in predictions.items():
        probs = np.exp(logits - logits.max(1, keepdims=True))
        per_sample[f"p_up[{method}]"] = (probs[:, -1] / probs.sum(1)).astype(np.float32)
    per_sample.to_parquet(out / "predictions.parquet", index=False)
    write_plots(out, predictions, labels, frame)
    return table


def load_day(
    orderbook: Path,
    message: Path | None,
    levels: int | None,
    sampling: str,
    dt: float,
    classes: int,
    skip_invalid: bool,
) -> tuple[LobsterDay, Stream, FeatureFrame, dict[str, Any], str]:
    """The day, its labelled stream and features, its sources (the files' names and hashes),
    and the hash of all that determines the stream (checked when a run resumes)."""
    day = read_lobster(orderbook, message, levels=levels, skip_invalid=skip_invalid)
    data_hashes = {  # after the reader, which reports a missing or bad file on one line
        "orderbook_sha256": file_sha256(orderbook),
        "message_sha256": file_sha256(message) if message else None,
    }
    stream_key = config_hash(
        {
            **data_hashes,
            "levels": levels,
            "sampling": sampling,
            "dt": dt,
            "classes": classes,
            "skip_invalid": skip_invalid,
        }
    )
    stream, frame = lob_stream(day, sampling=sampling, dt=dt, classes=classes)  # type: ignore[arg-type]
    if len(stream.targets) < MIN_SAMPLES:
        raise UserError(
            f"{orderbook}: only {len(stream.targets)} labelled samples; the online "
            f"comparison needs at least {MIN_SAMPLES}"
        )
    sources = {"orderbook": str(orderbook), "message": str(message) if message else None}
    return day, stream, frame, {**sources, **data_hashes}, stream_key


def describe_data(
    day: LobsterDay,
    stream: Stream,
    training: Stream,
    n_classes: int,
    sources: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """The "data" part of summary.json: `sources` (files and hashes), the day's size, the
    stream `settings`, the features and the labels."""
    return {
        **sources,
        "events": len(day),
        "levels": day.n_levels,
        "samples": len(stream.targets),
        "skipped_rows": len(day.skipped_rows),
        "first_skipped_rows": list(day.skipped_rows[:20]),
        **settings,
        "features": list(stream.input_names),
        "label_counts": np.bincount(stream.targets, minlength=n_classes).tolist(),
        "revealed_for_training": int((training.targets >= 0).sum()),
    }


def run(
    out: Path,
    *,
    orderbook: Path,
    message: Path | None,
    levels: int | None = None,
    sampling: str = "event",
    dt: float = 1.0,
    classes: int = 2,
    cells: tuple[str, ...] = ("elman",),
    algorithms: tuple[str, ...] = ("rtrl", "tbptt:1:10", "rtrl:every=10", "tbptt:10"),
    hidden: int = 32,
    optimizer: str = "adam",
    lr: float | tuple[float, ...] = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
    lr_half_life: float = DEFAULT_HALF_LIFE,
    seed: int = 0,
    skip_invalid: bool = False,
    progress: bool = False,
    checkpoint_every: int = 20_000,
    resume: bool = False,
    chunk: int = CHUNK_EVENTS * 4,
) -> dict[str, Any]:
    """The whole experiment (see the module docstring) into `out`: table.csv, metrics.csv,
    predictions.parquet, plots, summary.json and report.html; returns the summary. Long only
    because it passes each option on to the step that uses it."""
    day, stream, frame, sources, stream_key = load_day(
        orderbook, message, levels, sampling, dt, classes, skip_invalid
    )
    training = replace(stream, targets=revealed_targets(stream.targets, frame.mid, classes))
    model = {
        "hidden": hidden,
        "optimizer": optimizer,
        "lr": lr,
        "lr_half_life": lr_half_life,
        "seed": seed,
    }
    configs = {
        f"{cell} {algorithm}": TrainConfig(cell=cell, algo=algorithm, chunk=chunk, **model)
        for cell in cells
        for algorithm in algorithms
    }
    predictions, facts = rnn_predictions(
        out,
        training,
        stream_key,
        configs,
        labels=stream.targets,
        progress=progress,
        checkpoint_every=checkpoint_every,
        resume=resume,
    )
    baselines, baseline_facts = baseline_predictions(
        training,
        frame.mid,
        classes,
        labels=stream.targets,
        optimizer=optimizer,
        lr=lr,
        lr_half_life=lr_half_life,
        chunk=chunk,
        progress=progress,
    )
    predictions, facts = predictions | baselines, facts | baseline_facts
    table = write_predictions(out, predictions, facts, training, stream.targets, frame)
    settings = {"sampling": sampling, "dt": dt if sampling == "clock" else None, "classes": classes}
    summary = {
        "experiment": "lob",
        "data": describe_data(day, stream, training, classes, sources, settings),
        "model": {"cells": list(cells), "algorithms": list(algorithms), **model},
        "results": table.to_dict(orient="records"),
        "resumed": resume,
        "versions": versions(),
    }
    write_json(out / "summary.json", summary)
    write_report(out, summary, table)
    return summary


def table_text(table: list[dict[str, Any]]) -> str:
    """Day metrics, one line per method."""
    from streamgrad.reporting import Column, render_table

    columns = [
        Column("method", align="left"),
        Column("updates_every", "update every"),
        Column("lr", spec="g"),
        Column("accuracy_day", "acc", ".3f"),
        Column("balanced_accuracy_day", "bal.acc", ".3f"),
        Column("log_loss_day", "logloss", ".4f"),
        Column("accuracy_last_half", "acc 2nd half", ".3f"),
    ]
    return render_table(table, columns)
