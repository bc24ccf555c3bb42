"""One online run from a validated config: build the learner, stream the data, summarise."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.checkpoint import load_checkpoint, save_checkpoint
from streamgrad.config import TrainConfig
from streamgrad.data.dataset import Stream
from streamgrad.errors import DataError, UserError
from streamgrad.gradients import make_algorithm
from streamgrad.model import make_model
from streamgrad.online import ChunkRecord, History, LearnerState, LrBackoff, OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule, with_lr_scale


def resolve_dtype(name: str) -> Any:
    """float32, or float64 (which needs JAX's x64 mode, switched on here)."""
    if name == "float64":
        jax.config.update("jax_enable_x64", True)
        return jnp.float64
    return jnp.float32


def build_learner(
    config: TrainConfig, input_dim: int, n_classes: int | None
) -> tuple[OnlineLearner, LearnerState]:
    """Learner and its initial state for a stream with `input_dim` inputs; seeded by config."""
    dtype = resolve_dtype(config.dtype)
    try:
        model = make_model(
            config.cell,
            config.hidden,
            input_dim,
            n_classes=n_classes,
            beta=config.beta,
            **config.cell_options,
        )
        algorithm = make_algorithm(config.algorithm_spec, model)
        schedule = make_schedule(
            config.schedule, config.lr, k0=config.k0, rho=config.rho, decay_steps=config.decay_steps
        )
        optimizer = make_optimizer(config.optimizer, schedule, clip_norm=config.clip)
        if config.lr_backoff is not None:
            optimizer = with_lr_scale(optimizer)
    except ValueError as error:
        raise UserError(str(error)) from None
    learner = OnlineLearner(algorithm, optimizer)
    params = model.init(jax.random.PRNGKey(config.seed), dtype)
    return learner, learner.init(params, dtype)


def classification_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean per-class recall over the classes present) and
    log-loss of class logits (T, K) against labels (T,); negative (unrevealed) labels skipped."""
    revealed = labels >= 0
    logits, labels = np.asarray(logits, np.float64)[revealed], labels[revealed]
    if len(labels) == 0:
        return {
            "accuracy": float("nan"),
            "balanced_accuracy": float("nan"),
            "log_loss": float("nan"),
            "labelled": 0,
        }
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    predicted = logits.argmax(-1)
    recalls = [np.mean(predicted[labels == c] == c) for c in np.unique(labels)]
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "balanced_accuracy": float(np.mean(recalls)),
        "log_loss": float(-np.mean(log_probs[np.arange(len(labels)), labels])),
        "labelled": len(labels),
    }


def stream_metrics(
    losses: np.ndarray, outputs: np.ndarray, targets: np.ndarray, n_classes: int | None
) -> dict[str, float]:
    """Prequential metrics over a stretch of the stream: mean loss, and for classification
    the metrics of `classification_metrics`."""
    metrics: dict[str, float] = {"loss": float(np.mean(losses)), "steps": len(losses)}
    if n_classes is not None:
        metrics.update(classification_metrics(outputs, targets))
    return metrics


@dataclass
class RunResult:
    label: str
    config: TrainConfig
    history: History
    state: LearnerState
    summary: dict[str, Any]


def train_on_stream(
    config: TrainConfig,
    stream: Stream,
    *,
    label: str | None = None,
    progress: bool = False,
    checkpoints: Path | None = None,
    checkpoint_every: int = 50_000,
    resume: bool = False,
    expect: dict[str, Any] | None = None,
) -> RunResult:
    """Prequential online training over the whole stream, then a summary with the metrics over
    the whole stream and over its last 10%.

    With `checkpoints` (a folder), the run saves an atomic checkpoint at the first chunk end
    after every `checkpoint_every` steps and at the end: learner state (parameters, optimizer,
    hidden state, influence/buffers), the per-step losses and outputs so far, the chunk
    records, and `expect` (config and data hashes). `resume=True` continues from the newest
    valid checkpoint, refusing one whose `expect` values differ; the result equals that of an
    uninterrupted run bitwise (same machine). With `config.lr_backoff`, a diverging chunk is
    rerun with a lower learning rate (see `LrBackoff`) and the summary lists the back-offs.
    """
    label = label or config.algorithm_spec
    learner, state = build_learner(config, stream.input_dim, stream.n_classes)
    window = learner.algorithm.options.get("tau")
    if window is not None and len(stream) < window:
        raise DataError(
            f"only {len(stream)} usable rows; {config.algorithm_spec} needs at least {window} "
            "(one truncation window)",
            file=stream.source or None,
        )
    history = None
    width = stream.n_classes or 1
    dtype = jax.tree_util.tree_leaves(state.params)[0].dtype
    if resume:
        if checkpoints is None:
            raise UserError("resume needs a checkpoint folder")
        template = (state, np.zeros(len(stream), dtype), np.zeros((len(stream), width), dtype))
        (state, losses, outputs), meta = load_checkpoint(checkpoints, template, expect=expect)
        done = int(meta["position"])
        history = History(
            losses[:done],
            outputs[:done],
            [ChunkRecord(*c) for c in meta["chunks"]],
            float(meta["wall_seconds"]),
            [(int(step), float(scale)) for step, scale in meta.get("backoffs", [])],
        )
    last_saved = len(history.losses) if history else 0

    def save(current: LearnerState, so_far: History) -> None:
        nonlocal last_saved
        position = len(so_far.losses)
        if position - last_saved < checkpoint_every and position < len(stream):
            return
        losses = np.zeros(len(stream), dtype)
        outputs = np.zeros((len(stream), width), dtype)
        losses[:position], outputs[:position] = so_far.losses, so_far.outputs
        metadata = {
            **(expect or {}),
            "position": position,
            "wall_seconds": so_far.wall_seconds,
            "chunks": [list(c) for c in so_far.chunks],
            "backoffs": [list(b) for b in so_far.backoffs],
        }
        save_checkpoint(checkpoints, (current, losses, outputs), metadata=metadata, step=position)
        last_saved = position

    state, history = learner.fit(
        state,
        stream.inputs,
        stream.targets,
        chunk_size=config.chunk,
        progress=progress,
        description=label,
        on_chunk=save if checkpoints is not None else None,
        history=history,
        backoff=(
            LrBackoff(config.lr_backoff, config.max_backoffs)
            if config.lr_backoff is not None
            else None
        ),
    )
    tail = max(1, len(stream) // 10)
    summary = {
        "label": label,
        "algorithm": learner.algorithm.name,
        "config": config.model_dump(),
        "steps": len(stream),
        "overall": stream_metrics(
            history.losses, history.outputs, stream.targets, stream.n_classes
        ),
        "last_10_percent": stream_metrics(
            history.losses[-tail:],
            history.outputs[-tail:],
            stream.targets[-tail:],
            stream.n_classes,
        ),
        "steps_per_second": history.steps_per_second,
        "wall_seconds": history.wall_seconds,
        "lr_backoffs": [{"diverged_at_step": s, "lr_scale": c} for s, c in history.backoffs],
    }
    return RunResult(label, config, history, state, summary)
