"""One online run from a validated config: build the learner, stream the data, summarise."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from streamgrad.baselines import naive_baselines, prequential_losses
from streamgrad.checkpoint import load_checkpoint, save_checkpoint
from streamgrad.config import TrainConfig
from streamgrad.data.dataset import Stream
from streamgrad.data.lob_features import standardize_online
from streamgrad.ensemble import base_lr, with_lrs
from streamgrad.errors import DataError, UserError
from streamgrad.gradients import make_algorithm
from streamgrad.metrics import StreamMetrics
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
    """Learner and its initial state for a stream with `input_dim` inputs; seeded by config.
    Several learning rates give an `ensemble.LrEnsemble` (its state an `EnsembleState`)."""
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
            config.schedule,
            base_lr(config.lr),
            k0=config.k0,
            rho=config.rho,
            decay_steps=config.decay_steps,
        )
        optimizer = make_optimizer(config.optimizer, schedule, clip_norm=config.clip)
        if config.lr_backoff is not None:
            optimizer = with_lr_scale(optimizer)
    except ValueError as error:
        raise UserError(str(error)) from None
    learner = with_lrs(OnlineLearner(algorithm, optimizer), config.lr, config.lr_half_life)
    params = model.init(jax.random.PRNGKey(config.seed), dtype)
    return learner, learner.init(params, dtype)


class StreamCheckpoints:
    """`on_chunk` hook of `OnlineLearner.fit` that checkpoints a run over a stream of `length`
    steps: the learner state with the per-step losses (length,) and outputs (length, K) so far,
    at the first chunk end after every `every` steps and at the end, with `expect` (config and
    data hashes) and the chunk records in the metadata."""

    def __init__(self, folder: Path, every: int, length: int, expect: dict[str, Any]) -> None:
        self.folder, self.every, self.length, self.expect = folder, every, length, expect
        self.last_saved = 0

    def restore(self, template: LearnerState, width: int) -> tuple[LearnerState, History]:
        """The newest valid checkpoint (refusing one whose `expect` values differ)."""
        dtype = jax.tree_util.tree_leaves(template.params)[0].dtype
        arrays = (np.zeros(self.length, dtype), np.zeros((self.length, width), dtype))
        (state, losses, outputs), meta = load_checkpoint(
            self.folder, (template, *arrays), expect=self.expect
        )
        done = self.last_saved = int(meta["position"])
        history = History(
            losses[:done],
            outputs[:done],
            [ChunkRecord(*c) for c in meta["chunks"]],
            float(meta["wall_seconds"]),
            [(int(step), float(scale)) for step, scale in meta.get("backoffs", [])],
        )
        return state, history

    def __call__(self, current: LearnerState, so_far: History) -> None:
        position = len(so_far.losses)
        if position - self.last_saved < self.every and position < self.length:
            return
        dtype = jax.tree_util.tree_leaves(current.params)[0].dtype
        losses = np.zeros(self.length, dtype)
        outputs = np.zeros((self.length, so_far.outputs.shape[1]), dtype)
        losses[:position], outputs[:position] = so_far.losses, so_far.outputs
        metadata = {
            **self.expect,
            "position": position,
            "wall_seconds": so_far.wall_seconds,
            "chunks": [list(c) for c in so_far.chunks],
            "backoffs": [list(b) for b in so_far.backoffs],
        }
        state = (current, losses, outputs)
        save_checkpoint(self.folder, state, metadata=metadata, step=position)
        self.last_saved = position


@dataclass
class RunResult:
    """One run: its history and summary, and the per-step prequential losses (T,) of the
    task's naive baselines (`baselines.naive_baselines`), by name."""

    label: str
    config: TrainConfig
    history: History
    state: LearnerState
    summary: dict[str, Any]
    baselines: dict[str, np.ndarray] = field(default_factory=dict)


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
    scored_by: np.ndarray | None = None,
) -> RunResult:
    """Prequential online training over the whole stream, then a summary with the metrics over
    the whole stream and over its last 10%, and the steps between updates (`updates_every`).
    With `checkpoints` (a folder), the run saves an atomic checkpoint at the first chunk end
    after every `checkpoint_every` steps and at the end: learner state (parameters, optimizer,
    hidden state, influence/buffers), the per-step losses and outputs so far, the chunk
    records, and `expect` (config and data hashes). `resume=True` continues from the newest
    valid checkpoint, refusing one whose `expect` values differ; the result equals that of an
    uninterrupted run bitwise (same machine). With `config.standardize`, the inputs are
    standardised online before training, x_k -> (x_k - m_{k-1}) / s_{k-1} with the mean and
    standard deviation of x_0..x_{k-1} (`data.lob_features.standardize_online`: 0 during a
    warm-up of 10 steps, clipped to +-10). It is causal (z_k depends on x_0..x_k only), and it
    is a deterministic function of the stream, which a resume reads again and checks by its
    hash, so the checkpoint needs no running moments and the resumed run stays bitwise equal.
    With `config.lr_backoff`, a diverging chunk is rerun with a lower learning rate (see
    `LrBackoff`) and the summary lists the back-offs. The task's naive baselines run beside
    the model (`summary["baselines"]`, `summary["skill"]`). `scored_by`: the labels the
    progress bar scores the outputs against (see `OnlineLearner.fit`).
    """
    label = label or config.algorithm_spec
    learner, state = build_learner(config, stream.input_dim, stream.n_classes)
    _check_long_enough(learner, config, stream)
    history, saver = None, None
    if checkpoints is not None:
        saver = StreamCheckpoints(checkpoints, checkpoint_every, len(stream), expect or {})
        if resume:
            state, history = saver.restore(state, stream.n_classes or 1)
    elif resume:
        raise UserError("resume needs a checkpoint folder")
    inputs = standardize_online(stream.inputs) if config.standardize else stream.inputs
    state, history = learner.fit(
        state,
        inputs,
        stream.targets,
        chunk_size=config.chunk,
        progress=progress,
        description=label,
        on_chunk=saver,
        history=history,
        backoff=config.lr_backoff and LrBackoff(config.lr_backoff, config.max_backoffs),
        scored_by=scored_by,
    )
    baselines = _naive_baselines(stream)
    summary = {"label": label, "algorithm": learner.algorithm.name, "config": config.model_dump()}
    summary["updates_every"] = learner.algorithm.every or 1
    summary.update(summarise(history, stream))
    summary.update(compare_baselines(summary["last_10_percent"]["loss"], stream, baselines))
    losses = {name: losses for name, (_, losses) in baselines.items()}
    return RunResult(label, config, history, state, summary, losses)


def _check_long_enough(learner: OnlineLearner, config: TrainConfig, stream: Stream) -> None:
    """A stream shorter than one truncation window cannot be trained on."""
    check_long_enough(learner, config, len(stream), stream.source)


def check_long_enough(
    learner: OnlineLearner, config: TrainConfig, steps: int, source: str | None
) -> None:
    """Raise unless a stream of `steps` usable rows holds one truncation window."""
    window = learner.algorithm.tau
    if window is not None and steps < window:
        raise DataError(
            f"only {steps} usable rows; {config.algorithm_spec} needs at least {window} "
            "(one truncation window)",
            file=source or None,
        )


def _naive_baselines(stream: Stream) -> dict[str, Any]:
    """Each naive baseline of the task run prequentially over the stream."""
    return {
        name: prequential_losses(baseline, stream.inputs, stream.targets)
        for name, baseline in naive_baselines(stream.n_classes).items()
    }


def summarise(history: History, stream: Stream) -> dict[str, Any]:
    """Prequential metrics over the whole stream and over its last 10%, speed, back-offs."""
    stretches = _stretches(history.losses, history.outputs, stream)
    return run_summary(len(stream), stretches, history.wall_seconds, history.backoffs)


def run_summary(
    steps: int, stretches: dict[str, Any], wall_seconds: float, backoffs: list[tuple[int, float]]
) -> dict[str, Any]:
    """The summary of a run of `steps` steps: its `stretches` ("overall", "last_10_percent"
    metrics), steps/s over the `wall_seconds` spent running chunks, the back-offs taken."""
    return {
        "steps": steps,
        **stretches,
        "steps_per_second": steps / wall_seconds if wall_seconds > 0 else float("nan"),
        "wall_seconds": wall_seconds,
        "lr_backoffs": [{"diverged_at_step": s, "lr_scale": c} for s, c in backoffs],
    }


def compare_baselines(
    model_loss: float, stream: Stream, baselines: dict[str, tuple[np.ndarray, np.ndarray]]
) -> dict[str, Any]:
    """The baselines' metrics and the model's skill against the best of them (`skill`).

    model_loss: the model's mean prequential loss over the last 10% of `stream`.
    baselines: name -> (outputs (T, K), losses (T,)) of a prequential baseline on `stream`.
    """
    metrics = {
        name: _stretches(losses, outputs, stream) for name, (outputs, losses) in baselines.items()
    }
    return skill(model_loss, metrics)


def skill(model_loss: float, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{"baselines": metrics, "skill": {"best_baseline", "last_10_percent"}}, where metrics
    holds each baseline's {"overall", "last_10_percent"} and skill = 1 - (model's mean loss) /
    (best baseline's mean loss) over the last 10% of the stream: 0 for no better than the best
    baseline, 1 for no loss (NaN when the best baseline has no loss there). model_loss: the
    model's mean prequential loss over the last 10%."""
    best = min(metrics, key=lambda name: metrics[name]["last_10_percent"]["loss"])
    reference = metrics[best]["last_10_percent"]["loss"]
    ratio = 1.0 - model_loss / reference if reference > 0 else float("nan")
    return {"baselines": metrics, "skill": {"best_baseline": best, "last_10_percent": ratio}}


def _stretches(losses: np.ndarray, outputs: np.ndarray, stream: Stream) -> dict[str, Any]:
    """`StreamMetrics` of per-step losses (T,) and outputs (T, K) on `stream` over all of it
    ("overall") and over its last 10% ("last_10_percent")."""
    tail = max(1, len(stream) // 10)
    return {
        "overall": StreamMetrics(stream.n_classes).update(losses, outputs, stream.targets).get(),
        "last_10_percent": StreamMetrics(stream.n_classes)
        .update(losses[-tail:], outputs[-tail:], stream.targets[-tail:])
        .get(),
    }
