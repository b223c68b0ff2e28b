"""Scoring functions by name, so a use case lists its metrics as data.

Every metric takes the true targets and a score per row: the probability of the positive class for
classification, the predicted value for regression. Each knows whether higher is better, which is
what ranking candidates and comparing a challenger with the champion need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    mean_absolute_error,
)

# Probabilities are clipped before log loss so one confident miss gives a large, finite penalty.
_PROBABILITY_FLOOR = 1e-7


@dataclass(frozen=True)
class Metric:
    name: str
    task: str
    function: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    description: str

    def __call__(self, y_true: np.ndarray, y_score: np.ndarray) -> float:
        y_true = np.asarray(y_true, dtype=float)
        y_score = np.asarray(y_score, dtype=float)
        if len(y_true) == 0:
            return float("nan")
        return float(self.function(y_true, y_score))

    def better(self, candidate: float, reference: float, margin: float = 0.0) -> bool:
        """Whether ``candidate`` beats ``reference`` by more than ``margin``; NaN never wins."""
        if np.isnan(candidate):
            return False
        if np.isnan(reference):
            return True
        if self.greater_is_better:
            return candidate > reference + margin
        return candidate < reference - margin


def _both_classes(y_true: np.ndarray) -> bool:
    return 0 < y_true.sum() < len(y_true)


def _roc_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    # A slice with a single class has no ranking to judge; NaN says so instead of raising.
    if not _both_classes(y_true):
        return float("nan")
    # The Mann-Whitney form (midranks count ties half): the same value as the trapezoidal ROC
    # area, about 7x faster, which matters when intervals rescore a holdout a thousand times.
    positive = y_true == 1
    m = int(positive.sum())
    n = len(y_true) - m
    return float((rankdata(y_score)[positive].sum() - m * (m + 1) / 2) / (m * n))


def _pr_auc(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return average_precision_score(y_true, y_score) if y_true.sum() > 0 else float("nan")


def _log_loss(y_true: np.ndarray, y_score: np.ndarray) -> float:
    clipped = np.clip(y_score, _PROBABILITY_FLOOR, 1 - _PROBABILITY_FLOOR)
    return log_loss(y_true, clipped, labels=[0, 1])


def _accuracy(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float(np.mean((y_score >= 0.5) == (y_true == 1)))


def _sign_accuracy(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float(np.mean((y_score > 0) == (y_true > 0)))


def _rmse(y_true: np.ndarray, y_score: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y_true - y_score) ** 2)))


def expected_positives_in_top(y_true: np.ndarray, y_score: np.ndarray, share: float) -> float:
    """Positives among the ``share`` of rows with the highest scores.

    Rows tied at the cut-off are counted fractionally, i.e. as if ties were broken at random, so
    a model that gives everyone the same score gets a lift of exactly 1 instead of whatever the
    row order happens to give.
    """
    n_top = share * len(y_true)
    order = np.argsort(-y_score, kind="stable")
    scores, labels = y_score[order], y_true[order]
    if n_top <= 0:
        return 0.0
    cut = scores[min(int(np.ceil(n_top)) - 1, len(scores) - 1)]
    above = scores > cut
    tied = scores == cut
    room = n_top - above.sum()
    return float(labels[above].sum() + labels[tied].mean() * room)


def _lift(share: float) -> Callable[[np.ndarray, np.ndarray], float]:
    def lift(y_true: np.ndarray, y_score: np.ndarray) -> float:
        base_rate = y_true.mean()
        if base_rate == 0:
            return float("nan")
        return expected_positives_in_top(y_true, y_score, share) / (share * len(y_true)) / base_rate

    return lift


def _capture(share: float) -> Callable[[np.ndarray, np.ndarray], float]:
    def capture(y_true: np.ndarray, y_score: np.ndarray) -> float:
        positives = y_true.sum()
        if positives == 0:
            return float("nan")
        return expected_positives_in_top(y_true, y_score, share) / positives

    return capture


_METRICS = [
    Metric("roc_auc", "classification", _roc_auc, True, "area under the ROC curve"),
    Metric("pr_auc", "classification", _pr_auc, True, "average precision (area under precision-recall)"),
    Metric("log_loss", "classification", _log_loss, False, "log loss of the predicted probability"),
    Metric("brier", "classification", brier_score_loss, False, "Brier score of the predicted probability"),
    Metric("directional_accuracy", "classification", _accuracy, True,
           "share of rows whose class is predicted right at a 0.5 threshold"),
    Metric("lift_at_10", "classification", _lift(0.10), True, "positive rate in the top 10% / base rate"),
    Metric("lift_at_20", "classification", _lift(0.20), True, "positive rate in the top 20% / base rate"),
    Metric("capture_at_10", "classification", _capture(0.10), True, "share of positives in the top 10%"),
    Metric("capture_at_20", "classification", _capture(0.20), True, "share of positives in the top 20%"),
    Metric("rmse", "regression", _rmse, False, "root mean squared error"),
    Metric("mae", "regression", mean_absolute_error, False, "mean absolute error"),
    Metric("directional_accuracy", "regression", _sign_accuracy, True,
           "share of rows whose predicted sign matches the actual sign"),
]
METRICS: dict[tuple[str, str], Metric] = {(m.task, m.name): m for m in _METRICS}


def get_metric(task: str, name: str) -> Metric:
    try:
        return METRICS[(task, name)]
    except KeyError:
        known = ", ".join(sorted(n for t, n in METRICS if t == task)) or "none"
        raise ValueError(f"unknown {task} metric {name!r}; available: {known}") from None


def compute(task: str, names: list[str], y_true: np.ndarray, y_score: np.ndarray) -> dict[str, float]:
    return {name: get_metric(task, name)(y_true, y_score) for name in names}
