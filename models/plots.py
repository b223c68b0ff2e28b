"""Figures logged as MLflow artifacts for each training run: ROC, gains, calibration, importances, ranking.

Every figure is built with ``matplotlib.figure.Figure`` directly, never ``pyplot``: pyplot keeps a global
registry of open figures and picks a GUI backend, which leaks memory in long-running workers and is not safe
when Prefect trains candidates in threads. A bare ``Figure`` renders through Agg when saved.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

DPI = 100
SIZE = (6.0, 4.5)
WIDE = (10.0, 4.5)
MAX_SCATTER_POINTS = 5000
CALIBRATION_BINS = 10
HIGHLIGHT_COLOUR = "tab:orange"
BAR_COLOUR = "tab:blue"


def _figure(size: tuple[float, float] = SIZE) -> Figure:
    return Figure(figsize=size, dpi=DPI, layout="constrained")


def _note(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True,
            fontsize=10, color="dimgray", bbox={"boxstyle": "round", "facecolor": "whitesmoke",
                                                "edgecolor": "lightgray"})


def _labelled(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    """Positives as 0/1 and scores, keeping only rows where both label and score are finite."""
    y = np.asarray(y_true, dtype=float).ravel()
    s = np.asarray(score, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} rows but the scores have {s.size}")
    keep = np.isfinite(y) & np.isfinite(s)
    return (y[keep] == 1).astype(int), s[keep]


def _single_class_note(y: np.ndarray) -> str | None:
    if y.size == 0:
        return "no labelled rows with scores"
    positives = int(y.sum())
    if positives in (0, y.size):
        kind = "positive" if positives else "negative"
        return f"undefined: all {y.size:,} rows are {kind}"
    return None


def roc_figure(y_true: Any, scores: Mapping[str, Any], title: str) -> Figure:
    """ROC curves of one or more models scored on the same rows, with their AUC in the legend."""
    from sklearn.metrics import roc_auc_score, roc_curve

    figure = _figure()
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="chance (AUC 0.500)")
    notes = []
    for name, score in scores.items():
        y, s = _labelled(y_true, score)
        problem = _single_class_note(y)
        if problem:
            notes.append(f"{name}: ROC {problem}")
            continue
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, linewidth=1.5, label=f"{name} (AUC {roc_auc_score(y, s):.3f})")
    if not scores:
        notes.append("no model scores to plot")
    if notes:
        _note(ax, "\n".join(notes))
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="false positive rate", ylabel="true positive rate",
           title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    return figure


def _ranked_positives(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Positives per row in descending score order, shared evenly within groups of tied scores.

    Without the sharing a constant-score baseline would look better or worse than random depending
    only on row order.
    """
    order = np.argsort(-s, kind="stable")
    ranked_scores = s[order]
    group = np.concatenate([[0], np.cumsum(ranked_scores[1:] != ranked_scores[:-1])])
    share = np.bincount(group, weights=y[order]) / np.bincount(group)
    return share[group]


def _gains(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of rows contacted and share of positives captured, best scores first."""
    captured = np.concatenate([[0.0], np.cumsum(_ranked_positives(y, s)) / y.sum()])
    contacted = np.arange(y.size + 1) / y.size
    return contacted, captured


def _decile_lift(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    groups = np.array_split(_ranked_positives(y, s), min(10, y.size))
    return np.array([group.mean() for group in groups]) / y.mean()


def gains_figure(y_true: Any, scores: Mapping[str, Any], title: str) -> Figure:
    """Cumulative gains (positives captured vs rows contacted) and lift by decile, for a target list."""
    figure = _figure(WIDE)
    gains_ax, lift_ax = figure.subplots(1, 2)
    gains_ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="random")
    lifts: dict[str, np.ndarray] = {}
    notes = []
    perfect_drawn = False
    for name, score in scores.items():
        y, s = _labelled(y_true, score)
        problem = _single_class_note(y)
        if problem:
            notes.append(f"{name}: gains {problem}")
            continue
        if not perfect_drawn:
            # The ceiling shows how far a model is from contacting only buyers.
            rate = y.mean()
            gains_ax.plot([0, rate, 1], [0, 1, 1], linestyle=":", color="silver", linewidth=1,
                          label="perfect")
            perfect_drawn = True
        contacted, captured = _gains(y, s)
        gains_ax.plot(contacted, captured, linewidth=1.5, label=name)
        lifts[name] = _decile_lift(y, s)
    if not scores:
        notes.append("no model scores to plot")
    if notes:
        _note(gains_ax, "\n".join(notes))
    gains_ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="share of rows contacted (best scores first)",
                 ylabel="share of positives captured", title="cumulative gains")
    gains_ax.legend(loc="lower right", fontsize=8)

    if lifts:
        width = 0.8 / len(lifts)
        for i, (name, lift) in enumerate(lifts.items()):
            positions = np.arange(1, lift.size + 1) + (i - (len(lifts) - 1) / 2) * width
            lift_ax.bar(positions, lift, width=width, label=name)
        deciles = max(lift.size for lift in lifts.values())
        lift_ax.set_xticks(np.arange(1, deciles + 1))
        lift_ax.legend(fontsize=8)
    else:
        _note(lift_ax, "lift undefined without positives and negatives")
    lift_ax.axhline(1.0, linestyle="--", color="gray", linewidth=1)
    lift_ax.set(xlabel="decile (1 = highest scores)", ylabel="lift (positive rate / overall rate)",
                title="lift by decile")
    figure.suptitle(title)
    return figure


def _calibration_bins(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean prediction, observed frequency and row count in quantile bins of the prediction."""
    edges = np.unique(np.quantile(s, np.linspace(0, 1, CALIBRATION_BINS + 1)))
    if edges.size < 2:
        return np.array([s.mean()]), np.array([y.mean()]), np.array([y.size])
    # Interior edges only, so that the largest prediction falls in the last bin, not past it.
    bins = np.searchsorted(edges[1:-1], s, side="right")
    counts = np.bincount(bins, minlength=edges.size - 1)
    used = counts > 0
    predicted = np.bincount(bins, weights=s, minlength=edges.size - 1)[used] / counts[used]
    observed = np.bincount(bins, weights=y, minlength=edges.size - 1)[used] / counts[used]
    return predicted, observed, counts[used]


def _reliability(figure: Figure, y_true: Any, y_score: Any, title: str) -> None:
    y, s = _labelled(y_true, y_score)
    curve_ax, hist_ax = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    low, high = min(0.0, float(s.min(initial=0.0))), max(1.0, float(s.max(initial=1.0)))
    curve_ax.plot([low, high], [low, high], linestyle="--", color="gray", linewidth=1,
                  label="perfectly calibrated")
    if y.size:
        predicted, observed, counts = _calibration_bins(y, s)
        curve_ax.plot(predicted, observed, marker="o", linewidth=1.5,
                      label=f"model ({len(counts)} quantile bins, {y.size:,} rows)")
        hist_ax.hist(s, bins=20, range=(low, high), color=BAR_COLOUR, alpha=0.8)
    else:
        _note(curve_ax, "no labelled rows with scores")
    curve_ax.set(ylim=(-0.02, 1.02), ylabel="observed frequency of positives", title=title)
    curve_ax.legend(loc="upper left", fontsize=8)
    hist_ax.set(xlim=(low, high), xlabel="mean predicted probability", ylabel="rows")


def _scatter(figure: Figure, y_true: Any, y_score: Any, title: str) -> None:
    ax = figure.add_subplot()
    y = np.asarray(y_true, dtype=float).ravel()
    s = np.asarray(y_score, dtype=float).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} rows but the predictions have {s.size}")
    keep = np.isfinite(y) & np.isfinite(s)
    y, s = y[keep], s[keep]
    total = y.size
    if total > MAX_SCATTER_POINTS:
        # A fixed seed: the same run logs the same picture, and runs stay comparable.
        shown = np.sort(np.random.default_rng(0).choice(total, MAX_SCATTER_POINTS, replace=False))
        y, s = y[shown], s[shown]
    if total:
        low, high = float(min(y.min(), s.min())), float(max(y.max(), s.max()))
        ax.plot([low, high], [low, high], linestyle="--", color="gray", linewidth=1,
                label="predicted = actual")
        label = f"{total:,} rows" if total == y.size else f"{y.size:,} of {total:,} rows"
        ax.scatter(y, s, s=6, alpha=0.4, color=BAR_COLOUR, edgecolors="none", label=label)
        ax.legend(loc="upper left", fontsize=8)
    else:
        _note(ax, "no rows with both actual and predicted values")
    ax.set(xlabel="actual", ylabel="predicted", title=title)


def predicted_vs_actual_figure(y_true: Any, y_score: Any, task: str, title: str) -> Figure:
    """A reliability plot for ``classification``, a predicted-vs-actual scatter for ``regression``."""
    if task == "classification":
        figure = _figure((6.0, 6.0))
        _reliability(figure, y_true, y_score, title)
    elif task == "regression":
        figure = _figure()
        _scatter(figure, y_true, y_score, title)
    else:
        raise ValueError(f"unknown task {task!r}: expected 'classification' or 'regression'")
    return figure


def feature_importance_figure(names: Sequence[str], importances: Any, title: str, top: int = 20) -> Figure:
    """Horizontal bars of the ``top`` largest absolute importances, the largest at the top."""
    values = np.abs(np.asarray(importances, dtype=float).ravel())
    if len(names) != values.size:
        raise ValueError(f"{len(names)} names for {values.size} importances")
    # NaN ranks last rather than poisoning the sort.
    ranked = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:max(top, 0)]
    shown = len(ranked)
    figure = _figure((6.0, min(max(2.5, 0.28 * shown + 1.3), 8.0)))
    ax = figure.add_subplot()
    if shown:
        positions = np.arange(shown)
        ax.barh(positions, np.nan_to_num(values[ranked]), color=BAR_COLOUR)
        ax.set_yticks(positions, [str(names[i]) for i in ranked], fontsize=8)
        ax.invert_yaxis()
    else:
        _note(ax, "no importances to show")
    heading = title if shown == values.size else f"{title} (top {shown} of {values.size})"
    ax.set(xlabel="importance (absolute)", title=heading)
    return figure


def _final_estimator(estimator: Any) -> Any:
    """The last step of (nested) pipelines: the estimator that owns the importances."""
    while hasattr(estimator, "steps"):
        estimator = estimator.steps[-1][1]
    return estimator


def _raw_importances(model: Any) -> np.ndarray | None:
    if hasattr(model, "feature_importances_"):
        return np.asarray(model.feature_importances_, dtype=float).ravel()
    if hasattr(model, "coef_"):
        coef = np.abs(np.asarray(model.coef_, dtype=float))
        # One row per class for multiclass models: their mean keeps one value per feature.
        if coef.ndim == 2 and coef.shape[0] > 1:
            return coef.mean(axis=0)
        return coef.ravel()
    return None


def _feature_names(pipeline: Any, model: Any, count: int) -> list[str]:
    candidates = []
    if len(pipeline.steps) > 1:
        # Any transformer may lack names; the model's own or generic ones will do then.
        with contextlib.suppress(Exception):
            candidates.append(list(pipeline[:-1].get_feature_names_out()))
    if hasattr(model, "feature_names_in_"):
        candidates.append(list(model.feature_names_in_))
    for names in candidates:
        if len(names) == count:
            return [str(name) for name in names]
    return [f"x{i}" for i in range(count)]


def feature_importances(pipeline: Any) -> tuple[list[str], np.ndarray] | None:
    """Feature names and importances of a fitted features→model pipeline, or None when it has none.

    Importances are ``feature_importances_`` (tree models) or absolute ``coef_`` (linear models, also
    inside a nested pipeline such as scaler→logistic regression). Never raises: a plot is not worth
    failing a training run for.
    """
    try:
        model = _final_estimator(pipeline.steps[-1][1])
        importances = _raw_importances(model)
        if importances is None or importances.size == 0:
            return None
        return _feature_names(pipeline, model, importances.size), importances
    except Exception:  # deliberately broad, see the docstring
        return None


def leaderboard_figure(names: Sequence[str], values: Sequence[float], metric: str, greater_is_better: bool,
                       highlight: str | None, reference: Mapping[str, float] | None = None) -> Figure:
    """Each candidate's holdout value of the primary metric, best first, the chosen one highlighted."""
    if len(names) != len(values):
        raise ValueError(f"{len(names)} names for {len(values)} values")
    numbers = [float(v) if v is not None else math.nan for v in values]

    def key(i: int) -> tuple[bool, float]:
        missing = math.isnan(numbers[i])
        return missing, 0.0 if missing else (-numbers[i] if greater_is_better else numbers[i])

    order = sorted(range(len(names)), key=key)
    figure = _figure((6.0, min(max(2.5, 0.35 * len(names) + 1.5), 9.0)))
    ax = figure.add_subplot()
    positions = np.arange(len(order))
    widths = [0.0 if math.isnan(numbers[i]) else numbers[i] for i in order]
    colours = [HIGHLIGHT_COLOUR if names[i] == highlight else BAR_COLOUR for i in order]
    ax.barh(positions, widths, color=colours)
    for position, i in zip(positions, order, strict=True):
        text = "missing" if math.isnan(numbers[i]) else f"{numbers[i]:.4f}"
        ax.annotate(text, (widths[position], position), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8, color="dimgray" if math.isnan(numbers[i]) else "black")
    labels = [f"{names[i]} (chosen)" if names[i] == highlight else str(names[i]) for i in order]
    ax.set_yticks(positions, labels, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    line_styles = ["--", "-.", ":"]
    for index, (label, value) in enumerate((reference or {}).items()):
        if value is None or not math.isfinite(value):
            continue
        ax.axvline(value, linestyle=line_styles[index % len(line_styles)], linewidth=1.2,
                   color=f"C{(index + 2) % 10}", label=f"{label} ({value:.4f})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    # Room on the right for the value labels.
    right = max([w for w in widths if w > 0] + [v for v in (reference or {}).values()
                                                 if v is not None and math.isfinite(v) and v > 0] + [0.0])
    if right > 0:
        left, _ = ax.get_xlim()
        ax.set_xlim(left, right * 1.18)
    direction = "higher" if greater_is_better else "lower"
    ax.set(xlabel=f"holdout {metric} ({direction} is better)",
           title=f"Leaderboard: holdout {metric}, best first")
    return figure


def save(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG at 100 dpi and free it; returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    # Only a figure made through pyplot is registered there; never import pyplot just to close.
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and figure.canvas.manager is not None:
        pyplot.close(figure)
    figure.clear()
    return path
