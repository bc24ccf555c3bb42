"""One online run from a validated config: build the learner, stream the data, summarise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.config import TrainConfig
from streamgrad.data.dataset import Stream
from streamgrad.errors import UserError
from streamgrad.gradients import make_algorithm
from streamgrad.model import make_model
from streamgrad.online import ChunkRecord, History, LearnerState, OnlineLearner
from streamgrad.optim import make_optimizer, make_schedule


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
    on_chunk: Callable[[LearnerState, ChunkRecord], None] | None = None,
) -> RunResult:
    """Prequential online training over the whole stream, then a summary with the metrics over
    the whole stream and over its last 10%."""
    label = label or config.algorithm_spec
    learner, state = build_learner(config, stream.input_dim, stream.n_classes)
    state, history = learner.fit(
        state,
        stream.inputs,
        stream.targets,
        chunk_size=config.chunk,
        progress=progress,
        description=label,
        on_chunk=on_chunk,
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
    }
    return RunResult(label, config, history, state, summary)
