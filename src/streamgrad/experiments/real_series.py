"""RTRL and TBPTT on real series, at equal update frequency, against naive and classical
forecasters (the study of docs/real-series.md).

Every series (`data/real_series.py`: chosen before any result was seen) becomes the stream
x_k = z_k, y_k = z_{k+1}. The score is the prequential squared error over the second half of
the stream (each forecast made before its target is seen, the model learning all along).

Networks (Adam, N hidden units, the same initial parameters per seed), in two pairs at equal
update frequency (K = `every`):
- an update every step: RTRL against TBPTT(1, K) (every step, backpropagated over K steps);
- an update every K steps: RTRL(every K) (the sum of K exact gradients) against TBPTT(K, K);
each for Elman without and with the contraction guard (`--contract G`), and a GRU with RTRL
without and with it. Each network runs at every learning rate of `lrs` on its own, and as the
online learning-rate ensemble over the same rates (`ensemble.LrEnsemble`: the copy with the
lowest running prequential loss makes the forecast). "Best single rate" is chosen in hindsight
(the rate with the lowest mean score over the seeds), which no online user could do; the
ensemble is what one can do online.

Forecasters: persistence (o_k = y_{k-1}), running mean, seasonal naive (o_k = y_{k-m}, m the
season), and river's SNARIMAX (an online seasonal ARIMA fitted by SGD), at each rate of
SNARIMAX_LRS, the best in hindsight reported (favouring it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from streamgrad.baselines import naive_baselines, prequential_losses
from streamgrad.data.dataset import Stream
from streamgrad.data.real_series import (
    LOADERS,
    RealSeries,
    load_series,
    one_step_stream,
    seasonal_naive_losses,
)
from streamgrad.ensemble import DEFAULT_HALF_LIFE, LrEnsemble
from streamgrad.errors import DivergenceError, UserError
from streamgrad.experiments.lr_choice import (
    at_rate,
    ensemble_choice,
    equal_frequency,
    unit_rate_learner,
)
from streamgrad.model import make_model
from streamgrad.online import OnlineLearner
from streamgrad.progress import progress_bar
from streamgrad.reporting import Column, render_table, save_figure, versions, write_json

LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
SNARIMAX_LRS = (0.003, 0.01, 0.03)


@dataclass(frozen=True)
class Variant:
    """One network: cell, algorithm spec and contraction bound G (None: no guard)."""

    cell: str
    algo: str
    contract: float | None

    @property
    def label(self) -> str:
        guard = f" contract {self.contract:g}" if self.contract is not None else ""
        return f"{self.cell} {self.algo}{guard}"

    def learner(self, hidden: int, input_dim: int) -> OnlineLearner:
        """The learner with Adam at learning rate 1 (see `lr_choice`)."""
        options = {} if self.contract is None else {"contract": self.contract}
        return unit_rate_learner(
            make_model(self.cell, hidden, input_dim, **options), self.algo, "adam"
        )


def variants(every: int, contract: float) -> list[Variant]:
    """The two equal-frequency pairs for Elman, and a GRU with RTRL, without and with G."""
    algos = [spec for _, spec in equal_frequency((every,))]
    return [
        *(Variant("elman", algo, guard) for guard in (None, contract) for algo in algos),
        *(Variant("gru", "rtrl", guard) for guard in (None, contract)),
    ]


def second_half(losses: np.ndarray) -> float:
    """Mean prequential loss over the second half of a run (T,)."""
    return float(np.mean(losses[len(losses) // 2 :]))


def network_scores(
    variant: Variant,
    stream: Stream,
    seeds: int,
    hidden: int,
    lrs: tuple[float, ...],
    half_life: float = DEFAULT_HALF_LIFE,
) -> list[dict[str, Any]]:
    """One row per seed and learning-rate setting (each rate alone, then the ensemble with
    running losses of the given half-life): its second-half score (NaN when it diverged,
    with the step), and for the ensemble the rate it chose most often and at the last step."""
    learner = variant.learner(hidden, stream.input_dim)
    ensemble = LrEnsemble(learner, lrs, half_life=half_life)
    rows = []
    model = learner.algorithm.model
    for seed in range(seeds):
        for lr in lrs:  # fresh parameters per run: `fit` donates the state's buffers
            state = at_rate(ensemble, model.init(jax.random.PRNGKey(seed)), lr)
            rows.append({"seed": seed, "lr": str(lr), **_fit(ensemble.member, state, stream)})
        state = ensemble.init(model.init(jax.random.PRNGKey(seed)))
        rows.append({"seed": seed, "lr": "ensemble", **_fit(ensemble, state, stream)})
    return [{"variant": variant.label, **row} for row in rows]


def _fit(learner: OnlineLearner, state: Any, stream: Stream) -> dict[str, Any]:
    """Run the learner over the whole stream (one chunk): its score, or where it diverged."""
    try:
        state, history = learner.fit(state, stream.inputs, stream.targets, chunk_size=len(stream))
    except DivergenceError as error:
        return {"score": float("nan"), "diverged_at": error.step}
    row: dict[str, Any] = {"score": second_half(history.losses), "diverged_at": None}
    if isinstance(learner, LrEnsemble):
        row.update(ensemble_choice(learner.lrs, state))
    return row


def forecaster_scores(series: RealSeries, stream: Stream) -> dict[str, float]:
    """Second-half scores of persistence, running mean, seasonal naive and SNARIMAX (best of
    SNARIMAX_LRS in hindsight)."""
    scores = {
        name: second_half(prequential_losses(baseline, stream.inputs, stream.targets)[1])
        for name, baseline in naive_baselines(None).items()
    }
    scores["seasonal_naive"] = second_half(seasonal_naive_losses(stream, series.season))
    scores["snarimax"] = min(_snarimax(stream, series.season, lr) for lr in SNARIMAX_LRS)
    return scores


def _snarimax(stream: Stream, season: int, lr: float) -> float:
    """Second-half score of river's SNARIMAX(p=2, d=0, q=1)(P=1, D=0, Q=1, m=season), its
    linear regressor trained by SGD at rate `lr`, forecasting y_k from y_0..y_{k-1}."""
    try:
        from river import linear_model, optim, time_series
    except ImportError:
        raise UserError(
            "the classical forecaster comes from river; install it with "
            "pip install 'streamgrad[series]'"
        ) from None
    model = time_series.SNARIMAX(
        p=2,
        d=0,
        q=1,
        m=season,
        sp=1,
        sq=1,
        regressor=linear_model.LinearRegression(optimizer=optim.SGD(lr), intercept_lr=lr),
    )
    errors = np.empty(len(stream))
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging rate scores inf
        for k, target in enumerate(stream.targets):
            errors[k] = (model.forecast(horizon=1)[0] - target) ** 2
            model.learn_one(float(target))
    score = second_half(errors)
    return score if np.isfinite(score) else float("inf")


def run(
    out: Path,
    *,
    series: tuple[str, ...] = tuple(LOADERS),
    seeds: int = 3,
    hidden: int = 32,
    every: int = 10,
    contract: float = 0.9,
    lrs: tuple[float, ...] = LRS,
    half_life: float = DEFAULT_HALF_LIFE,
    quick: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """The study on each series; writes runs.csv (every run), table.csv (per series and
    network: best single rate in hindsight and the ensemble, means over seeds),
    forecasters.csv, scores.png and summary.json into `out`. `quick`: one series (elnino),
    one seed, N = 8, the Elman RTRL/TBPTT pairs only."""
    unknown = [name for name in series if name not in LOADERS]
    if unknown:
        raise UserError(f"--series: unknown {unknown}; choose from {', '.join(LOADERS)}")
    if quick:
        series, seeds, hidden = ("elnino",), 1, 8
    chosen = variants(every, contract)[: 4 if quick else None]
    rows, forecasters = [], {}
    with progress_bar(progress) as bar:
        task = bar.add_task("real series", total=len(series) * len(chosen))
        for name in series:
            data = load_series(name)
            stream = one_step_stream(data)
            forecasters[name] = forecaster_scores(data, stream)
            for variant in chosen:
                runs = network_scores(variant, stream, seeds, hidden, lrs, half_life)
                rows.extend({"series": name, **row} for row in runs)
                bar.update(task, advance=1, description=f"{name}: {variant.label}")
    runs = pd.DataFrame(rows)
    runs.to_csv(out / "runs.csv", index=False)
    table = summary_table(runs, forecasters)
    table.to_csv(out / "table.csv", index=False)
    pd.DataFrame(forecasters).T.rename_axis("series").to_csv(out / "forecasters.csv")
    plot_scores(out / "scores.png", table, forecasters)
    summary = {
        "experiment": "real-series",
        "settings": {
            "series": list(series),
            "seeds": seeds,
            "hidden": hidden,
            "every": every,
            "contract": contract,
            "lrs": list(lrs),
            "half_life": half_life,
            "optimizer": "adam",
            "score": "mean prequential squared error over the second half",
        },
        "table": table.to_dict(orient="records"),
        "forecasters": forecasters,
        "versions": versions(),
    }
    write_json(out / "summary.json", summary)
    return summary


def summary_table(runs: pd.DataFrame, forecasters: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Per series and network: the best single rate in hindsight (lowest mean score over
    seeds; a rate that diverged on any seed counts as diverged), its mean score, the
    ensemble's mean score, their ratio, the number of diverged single-rate runs, and the
    best forecaster's score."""
    records = []
    for (name, variant), group in runs.groupby(["series", "variant"], sort=False):
        means = group.groupby("lr", sort=False)["score"].mean()  # NaN if any seed diverged
        singles = means.drop("ensemble")
        best_lr = singles.idxmin() if singles.notna().any() else None
        best = float(singles[best_lr]) if best_lr is not None else float("nan")
        ensemble = float(means["ensemble"])
        reference = min(forecasters[name].values())
        records.append(
            {
                "series": name,
                "network": variant,
                "best_lr": None if best_lr is None else float(best_lr),
                "best_single": best,
                "ensemble": ensemble,
                "ensemble_over_best": ensemble / best,
                "diverged_runs": int(group["diverged_at"].notna().sum()),
                "best_forecaster": reference,
            }
        )
    return pd.DataFrame(records)


def plot_scores(path: Path, table: pd.DataFrame, forecasters: dict[str, dict[str, float]]) -> None:
    """One panel per series: each network's best single rate and ensemble as bars, the
    forecasters as horizontal lines."""
    names = list(forecasters)
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        rows = table[table["series"] == name]
        position = np.arange(len(rows))
        ax.bar(position - 0.2, rows["best_single"], 0.4, label="best single lr (hindsight)")
        ax.bar(position + 0.2, rows["ensemble"], 0.4, label="lr ensemble (online)")
        for (forecaster, score), style in zip(
            forecasters[name].items(), ("--", ":", "-.", "-"), strict=True
        ):
            ax.axhline(score, color="k", ls=style, lw=1, label=forecaster)
        ax.set_xticks(position, rows["network"], rotation=60, ha="right", fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("prequential MSE, second half")
        ax.set_title(name)
        ax.legend(fontsize=6)
    save_figure(fig, path)


def table_text(summary: dict[str, Any]) -> str:
    """The table of summary.json as plain text."""
    columns = [
        Column("series", align="left"),
        Column("network", align="left"),
        Column("best_lr", "best lr", "g"),
        Column("best_single", "best single", ".4f"),
        Column("ensemble", spec=".4f"),
        Column("ensemble_over_best", "ens/best", ".2f"),
        Column("diverged_runs", "diverged"),
        Column("best_forecaster", "best forecaster", ".4f"),
    ]
    return render_table(summary["table"], columns)
