"""Plots and the HTML report of the LOB experiment."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from streamgrad.data.lob_features import FeatureFrame
from streamgrad.metrics import pointwise_log_loss
from streamgrad.reporting import moving_average, save_figure

PLOTS = {
    "cumulative_accuracy.png": "Cumulative accuracy through the day",
    "log_loss.png": "Log-loss (moving average over 2,000 samples)",
    "mid_price.png": "Mid-price and the day's volatility regime",
}


def _hours(frame: FeatureFrame) -> np.ndarray:
    if frame.time is None:
        return np.arange(len(frame.mid), dtype=float)
    return frame.time / 3600.0


def _plot_methods(
    out: Path,
    name: str,
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: tuple[str, str],
    ylim: tuple[float, float] | None = None,
) -> None:
    """One line per method, curves[method] = (x, y), saved as out/name titled PLOTS[name];
    labels = (x label, y label)."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for method, (x, y) in curves.items():
        ax.plot(x, y, label=method, lw=1.2)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set(xlabel=labels[0], ylabel=labels[1], title=PLOTS[name])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out / name, dpi=120)


def write_plots(
    out: Path, predictions: dict[str, np.ndarray], labels: np.ndarray, frame: FeatureFrame
) -> None:
    """The three PLOTS of the methods' logits (T, K) against labels (T,) through the day."""
    hours = _hours(frame)
    xlabel = "time of day (hours)" if frame.time is not None else "sample"
    seen = np.arange(1, len(labels) + 1)
    accuracy = {m: (hours, np.cumsum(p.argmax(1) == labels) / seen) for m, p in predictions.items()}
    _plot_methods(
        out, "cumulative_accuracy.png", accuracy, (xlabel, "cumulative accuracy"), (0.3, 0.8)
    )
    window = min(2_000, len(labels))
    log_loss = {
        m: (hours[window - 1 :], moving_average(pointwise_log_loss(p, labels), window))
        for m, p in predictions.items()
    }
    _plot_methods(out, "log_loss.png", log_loss, (xlabel, "log-loss"))

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(9, 5.5), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    top.plot(hours, frame.mid, lw=0.8, color="black")
    top.set(ylabel="mid-price ($)", title=PLOTS["mid_price.png"])
    returns = np.r_[0.0, np.diff(np.log(frame.mid))] * 1e4
    vol_window = min(1_000, len(returns))
    volatility = np.sqrt(moving_average(returns**2, vol_window))
    bottom.plot(hours[vol_window - 1 :], volatility, lw=0.8, color="tab:red")
    bottom.set(xlabel=xlabel, ylabel=f"rms return\n(bp, {vol_window} events)")
    for axis in (top, bottom):
        axis.grid(alpha=0.3)
    save_figure(fig, out / "mid_price.png", dpi=120)


def write_report(out: Path, summary: dict[str, Any], table: pd.DataFrame) -> None:
    """report.html: the setup, the results table and the plots, in one page."""
    data, model = summary["data"], summary["model"]
    shown = table.drop(
        columns=[
            c for c in table.columns if c.endswith("_last_half") and not c.startswith("accuracy")
        ]
    )
    setup = (
        f"{data['events']:,} events, {data['samples']:,} samples ({data['sampling']} sampling), "
        f"{data['classes']}-class label, {len(data['features'])} causal features; "
        f"label counts {data['label_counts']}; "
        f"{data['revealed_for_training']:,} labels revealed for training. "
        f"RNNs: {', '.join(model['cells'])} with {model['hidden']} units, "
        f"{model['optimizer']} lr {model['lr']}, seed {model['seed']}."
    )
    figures = "\n".join(
        f'<figure><img src="{name}" alt="{html.escape(title)}"><figcaption>'
        f"{html.escape(title)}</figcaption></figure>"
        for name, title in PLOTS.items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>streamgrad: LOB online prediction</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;font-size:0.9em}}td,th{{border:1px solid #ccc;padding:4px 8px;
text-align:right}}th{{background:#f3f3f3}}img{{max-width:100%}}</style></head><body>
<h1>Online next mid-price move prediction</h1>
<p>{html.escape(Path(data["orderbook"]).name)}</p>
<p>{html.escape(setup)}</p>
<p>Every method predicts each sample before learning from it, on the same stream, and learns a
label only once it is revealed. Accuracy and log-loss over every labelled sample of the day,
and accuracy over its second half.</p>
{shown.to_html(index=False, float_format=lambda v: f"{v:.4f}", na_rep="")}
{figures}
<p>Files: table.csv, metrics.csv (per {2_500:,}-sample chunk), predictions.parquet,
summary.json.</p>
</body></html>
"""
    (out / "report.html").write_text(page)
