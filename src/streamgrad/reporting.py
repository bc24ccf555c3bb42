"""Results on disk: output folders, metrics tables, JSON summaries, plots."""

from __future__ import annotations

import io
import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from streamgrad.online import History


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
    path: Path,
    histories: Mapping[str, History],
    *,
    title: str,
    log_scale: bool = True,
    baselines: Mapping[str, np.ndarray] | None = None,
    stride: int = 1,
) -> None:
    """Moving average of the per-step prequential loss for each run, and dashed for each of
    `baselines` (name -> per-step losses (T,)). `stride`: each value is the mean loss over
    that many steps (a downsampled curve of a long stream)."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    curves = [(label, history.losses, "-") for label, history in histories.items()]
    curves += [(f"{name} (baseline)", losses, "--") for name, losses in (baselines or {}).items()]
    for label, losses, style in curves:
        window = max(1, len(losses) // 200)
        smooth = moving_average(losses, window)
        steps = np.arange(window, len(losses) + 1) * stride
        thin = slice(None, None, max(1, window // 4))  # ~800 points a curve are enough to see
        ax.plot(steps[thin], smooth[thin], style, label=label, lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("prequential loss (moving average)")
    if log_scale:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    save_figure(fig, path, dpi=120)


@dataclass(frozen=True)
class Column:
    """One column of `render_table`: the row key it shows, its header (the key when None), the
    format spec of its values as in `format(value, spec)` ('.3f', ',', ',.1f'; '' prints
    str(value)) and its alignment."""

    key: str
    header: str | None = None
    spec: str = ""
    align: Literal["left", "right"] = "right"


def _cell(row: Mapping[str, Any], column: Column) -> str:
    """A key the row lacks leaves the cell blank; None prints as '-'."""
    if column.key not in row:
        return ""
    value = row[column.key]
    return "-" if value is None else format(value, column.spec)


def render_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    markdown: bool = False,
) -> str:
    """The one table renderer: one line per row, cells formatted by their Column.

    Plain text (the default): columns aligned, two spaces apart, the headers on the first
    line, no rules (rich's Table, rendered without colour or markup, so a cell such as '[x]'
    prints as written). markdown: a pipe table, cells unpadded, the alignment in the rule line.
    `title`, when given, is the first line (in markdown followed by a blank one). No trailing
    newline.
    """
    headers = [column.header or column.key for column in columns]
    cells = [[_cell(row, column) for column in columns] for row in rows]
    if markdown:
        rule = [":--" if column.align == "left" else "--:" for column in columns]
        lines = [f"| {' | '.join(line)} |" for line in [headers, *cells]]
        lines.insert(1, f"|{'|'.join(rule)}|")
        return "\n".join(([title, ""] if title else []) + lines)
    table = Table(box=None, padding=(0, 1), pad_edge=False, header_style=None)
    for header, column in zip(headers, columns, strict=True):
        table.add_column(Text(header), justify=column.align, no_wrap=True)
    for line in cells:
        table.add_row(*(Text(cell) for cell in line))
    buffer = io.StringIO()
    Console(file=buffer, width=100_000, color_system=None, highlight=False).print(table)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    return "\n".join(([title] if title else []) + lines)


def loglog_slope(sizes: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of log value against log size (None with fewer than 2 sizes)."""
    if len(sizes) < 2:
        return None
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def save_figure(fig: plt.Figure, path: Path, dpi: int = 110) -> None:
    """Lay out (tight, unless the figure has its own layout engine), write (PNG), close."""
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
