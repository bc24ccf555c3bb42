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
Baselines: majority class (running counts of revealed labels), previous move (direction of the
last mid change seen, with a running hit rate as its confidence), and online multinomial
logistic regression on the same features with the same optimizer and learning rate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd

from streamgrad.checkpoint import config_hash, file_sha256
from streamgrad.config import TrainConfig
from streamgrad.data.lob_features import FeatureFrame, lob_stream
from streamgrad.data.lobster import read_lobster
from streamgrad.errors import UserError
from streamgrad.experiments.lob_report import write_plots, write_report
from streamgrad.optim import make_optimizer, make_schedule
from streamgrad.reporting import versions, write_json
from streamgrad.training import classification_metrics, train_on_stream

CHUNK_EVENTS = 2_500
MIN_SAMPLES = 10


def revealed_targets(labels: np.ndarray, mid: np.ndarray, classes: int) -> np.ndarray:
    """Training targets: y_k where it is known at step k+1, else -1 (see module docstring)."""
    if classes == 3:
        return labels
    changes_next = np.r_[mid[1:] != mid[:-1], False]
    return np.where(changes_next, labels, -1)


def majority_logits(train_targets: np.ndarray, n_classes: int) -> np.ndarray:
    """log of Laplace-smoothed class frequencies among labels revealed before step k."""
    onehot = np.zeros((len(train_targets), n_classes))
    revealed = train_targets >= 0
    onehot[revealed, train_targets[revealed]] = 1.0
    counts = np.vstack([np.zeros(n_classes), np.cumsum(onehot, 0)[:-1]]) + 1.0
    return np.log(counts / counts.sum(1, keepdims=True))


def previous_move_guess(mid: np.ndarray, n_classes: int) -> np.ndarray:
    """The last observed move at each sample: 2 classes, the direction of the last mid change
    up to k (up before any change); 3 classes, the move into sample k."""
    step = np.sign(np.r_[0.0, np.diff(mid)])
    if n_classes == 3:
        return (step + 1).astype(int)
    changed = np.flatnonzero(step != 0)
    last = np.full(len(mid), -1)
    last[changed] = changed
    last = np.maximum.accumulate(last)
    return np.where(last >= 0, (step[np.maximum(last, 0)] > 0).astype(int), 1)


def previous_move_logits(mid: np.ndarray, train_targets: np.ndarray, n_classes: int) -> np.ndarray:
    """`previous_move_guess` with confidence = Laplace-smoothed running hit rate on the labels
    revealed before step k; the other classes share the rest."""
    guess = previous_move_guess(mid, n_classes)
    revealed = train_targets >= 0
    hits = np.cumsum(np.r_[0, (guess == train_targets)[:-1] & revealed[:-1]])
    seen = np.cumsum(np.r_[0, revealed[:-1]])
    confidence = (hits + 1.0) / (seen + 2.0)
    probs = np.repeat(((1 - confidence) / (n_classes - 1))[:, None], n_classes, 1)
    probs[np.arange(len(mid)), guess] = confidence
    return np.log(probs)


def logistic_logits(
    inputs: np.ndarray,
    train_targets: np.ndarray,
    n_classes: int,
    *,
    optimizer: optax.GradientTransformation,
) -> np.ndarray:
    """Online multinomial logistic regression: predict, then one optimizer step on the
    revealed label (same masked cross-entropy as the RNNs). inputs (T, F) -> logits (T, K)."""
    params = {"W": jnp.zeros((n_classes, inputs.shape[1])), "b": jnp.zeros(n_classes)}

    def loss(p: dict, x: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits = p["W"] @ x + p["b"]
        value = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(y, 0))
        return jnp.where(y >= 0, value, 0.0), logits

    def step(carry: tuple, xy: tuple) -> tuple[tuple, jax.Array]:
        p, opt_state = carry
        grads, logits = jax.grad(loss, has_aux=True)(p, *xy)
        updates, opt_state = optimizer.update(grads, opt_state, p)
        return (optax.apply_updates(p, updates), opt_state), logits

    scan = jax.jit(lambda c, xs, ys: jax.lax.scan(step, c, (xs, ys)))
    _, logits = scan(
        (params, optimizer.init(params)),
        jnp.asarray(inputs, jnp.float32),
        jnp.asarray(train_targets, jnp.int32),
    )
    return np.asarray(logits)


def evaluate(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    half = len(labels) // 2
    whole = classification_metrics(logits, labels)
    second = classification_metrics(logits[half:], labels[half:])
    return {
        **{f"{k}_day": v for k, v in whole.items() if k != "labelled"},
        **{f"{k}_last_half": v for k, v in second.items() if k != "labelled"},
    }


def chunk_metrics(
    predictions: dict[str, np.ndarray], labels: np.ndarray, frame: FeatureFrame
) -> pd.DataFrame:
    rows = []
    for method, logits in predictions.items():
        for begin in range(0, len(labels), CHUNK_EVENTS):
            end = min(begin + CHUNK_EVENTS, len(labels))
            metrics = classification_metrics(logits[begin:end], labels[begin:end])
            rows.append(
                {
                    "method": method,
                    "first_sample": begin,
                    "last_sample": end - 1,
                    "time": float(frame.time[end - 1]) if frame.time is not None else None,
                    **metrics,
                }
            )
    return pd.DataFrame(rows)


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
    algorithms: tuple[str, ...] = ("rtrl", "tbptt:10", "tbptt:1"),
    hidden: int = 32,
    optimizer: str = "adam",
    lr: float = 1e-3,
    seed: int = 0,
    skip_invalid: bool = False,
    progress: bool = False,
    checkpoint_every: int = 20_000,
    resume: bool = False,
    chunk: int = CHUNK_EVENTS * 4,
) -> dict[str, Any]:
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
    labels = stream.targets
    if len(labels) < MIN_SAMPLES:
        raise UserError(
            f"{orderbook}: only {len(labels)} labelled samples; the online "
            f"comparison needs at least {MIN_SAMPLES}"
        )
    n_classes = int(stream.n_classes or classes)
    train_targets = revealed_targets(labels, frame.mid, classes)
    training = stream.__class__(
        stream.inputs,
        train_targets,
        stream.input_names,
        stream.target_name,
        stream.n_classes,
        stream.source,
    )
    predictions: dict[str, np.ndarray] = {}
    speeds: dict[str, float] = {}
    for cell in cells:
        for algorithm in algorithms:
            config = TrainConfig(
                cell=cell,
                hidden=hidden,
                algo=algorithm,
                optimizer=optimizer,
                lr=lr,
                seed=seed,
                chunk=chunk,
            )
            label = f"{cell} {algorithm}"
            folder = out / "checkpoints" / label.replace(" ", "-").replace(":", "_")
            result = train_on_stream(
                config,
                training,
                label=label,
                progress=progress,
                checkpoints=folder,
                checkpoint_every=checkpoint_every,
                resume=resume and any(folder.glob("checkpoint-*.npz")),
                expect={"config_hash": config_hash(config.model_dump()), "stream": stream_key},
            )
            predictions[label] = result.history.outputs
            speeds[label] = result.summary["steps_per_second"]
    predictions["logistic regression"] = logistic_logits(
        stream.inputs,
        train_targets,
        n_classes,
        optimizer=make_optimizer(optimizer, make_schedule("constant", lr)),
    )
    predictions["previous move"] = previous_move_logits(frame.mid, train_targets, n_classes)
    predictions["majority class"] = majority_logits(train_targets, n_classes)

    table = pd.DataFrame(
        [
            {"method": m, **evaluate(p, labels), "steps_per_second": speeds.get(m)}
            for m, p in predictions.items()
        ]
    )
    table.to_csv(out / "table.csv", index=False)
    chunks = chunk_metrics(predictions, labels, frame)
    chunks.to_csv(out / "metrics.csv", index=False)
    per_sample = pd.DataFrame(
        {"time": frame.time, "mid": frame.mid, "label": labels, "revealed_label": train_targets}
    )
    for method, logits in predictions.items():
        probs = np.exp(logits - logits.max(1, keepdims=True))
        per_sample[f"p_up[{method}]"] = (probs[:, -1] / probs.sum(1)).astype(np.float32)
    per_sample.to_parquet(out / "predictions.parquet", index=False)
    write_plots(out, predictions, labels, frame)
    summary = {
        "experiment": "lob",
        "data": {
            "orderbook": str(orderbook),
            "message": str(message) if message else None,
            **data_hashes,
            "events": len(day),
            "levels": day.n_levels,
            "samples": len(labels),
            "skipped_rows": len(day.skipped_rows),
            "first_skipped_rows": list(day.skipped_rows[:20]),
            "sampling": sampling,
            "dt": dt if sampling == "clock" else None,
            "classes": classes,
            "features": list(stream.input_names),
            "label_counts": np.bincount(labels, minlength=n_classes).tolist(),
            "revealed_for_training": int((train_targets >= 0).sum()),
        },
        "model": {
            "cells": list(cells),
            "algorithms": list(algorithms),
            "hidden": hidden,
            "optimizer": optimizer,
            "lr": lr,
            "seed": seed,
        },
        "results": table.to_dict(orient="records"),
        "resumed": resume,
        "versions": versions(),
    }
    write_json(out / "summary.json", summary)
    write_report(out, summary, table)
    return summary


def table_text(table: list[dict[str, Any]]) -> str:
    header = f"{'method':<22} {'acc':>6} {'bal.acc':>7} {'logloss':>8} {'acc 2nd half':>12}"
    lines = [header]
    for row in table:
        lines.append(
            f"{row['method']:<22} {row['accuracy_day']:>6.3f} "
            f"{row['balanced_accuracy_day']:>7.3f} {row['log_loss_day']:>8.4f} "
            f"{row['accuracy_last_half']:>12.3f}"
        )
    return "\n".join(lines)
