"""Results on disk: output folders, metrics tables, JSON summaries, plots."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from streamgrad.errors import UserError
from streamgrad.online import History


def prepare_output_dir(path: Path, *, force: bool = False) -> Path:
    """Create `path`; refuse an existing non-empty folder unless `force` (results are never
    overwritten by accident)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{path}: exists and is not a folder")
    if path.exists() and any(path.iterdir()) and not force:
        raise UserError(f"{path}: output folder exists and is not empty (use --force to overwrite)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def versions() -> dict[str, str]:
    import jax
    import jaxlib
    import optax

    import streamgrad

    return {
        "streamgrad": streamgrad.__version__,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "optax": optax.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
    }


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(_clean(data), indent=2) + "\n")


def chunk_table(histories: Mapping[str, History]) -> pd.DataFrame:
    """Per-chunk metrics of several runs: method, step, loss, running loss, accuracy, steps/s."""
    frames = [pd.DataFrame(h.chunks).assign(method=label) for label, h in histories.items()]
    table = pd.concat(frames, ignore_index=True)
    return table[["method", *[c for c in table.columns if c != "method"]]]


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    window = max(1, min(window, len(values)))
    cumulative = np.cumsum(np.insert(np.asarray(values, np.float64), 0, 0.0))
    return (cumulative[window:] - cumulative[:-window]) / window


def plot_losses(
    path: Path, histories: Mapping[str, History], *, title: str, log_scale: bool = True
) -> None:
    """Moving average of the per-step prequential loss for each run."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, history in histories.items():
        window = max(1, len(history.losses) // 200)
        smooth = moving_average(history.losses, window)
        ax.plot(np.arange(window, len(history.losses) + 1), smooth, label=label, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("prequential loss (moving average)")
    if log_scale:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
