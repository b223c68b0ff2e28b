"""How sure a cycle is of what its holdout shows: intervals for the promotion gate and the leaderboard.

Every model is scored on the same resampled holdout rows, so comparisons stay paired. Rows of a
time-ordered use case are resampled in blocks of consecutive dates (neighbouring days share their
market); others are resampled within each class, so that a rare class never vanishes from a draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from models.metrics import Metric
from models.promotion import Evidence, best_baseline
from models.uncertainty import (
    Interval,
    delong_auc_difference,
    paired_bootstrap,
    percentile_range,
    resampled_rows,
    resampled_values,
)
from pipelines.config.usecase import WALK_FORWARD, UseCase

RESAMPLES = 1000


def holdout_dates(use_case: UseCase, frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray | None:
    """The ordering column of the holdout rows of a time-ordered use case (else None), in time order."""
    if use_case.split.strategy != WALK_FORWARD or use_case.order is None:
        return None
    column = use_case.order.column
    values = frame[column].iloc[rows]
    if column in use_case.date_columns:
        return pd.to_datetime(values, format=use_case.date_columns[column]).to_numpy()
    return values.to_numpy()


def _draws(use_case: UseCase, y: np.ndarray, dates: np.ndarray | None) -> list[np.ndarray]:
    return resampled_rows(len(y), RESAMPLES, use_case.random_state, y,
                          stratify=use_case.task == "classification", dates=dates)


def gain_metric(metric: Metric) -> Callable[[np.ndarray, np.ndarray], float]:
    """``metric`` turned so that higher is better: differences of it are gains."""
    if metric.greater_is_better:
        return metric
    return lambda y, scores: -metric(y, scores)


def holdout_ranges(use_case: UseCase, metric: Metric, y: np.ndarray, dates: np.ndarray | None,
                   scores: dict[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Each model's interval of its holdout ``metric`` at the use case's confidence (NaNs if undefined)."""
    if len(y) == 0:
        return {name: (math.nan, math.nan) for name in scores}
    draws = _draws(use_case, y, dates)
    return {name: percentile_range(resampled_values(metric, y, values, draws), use_case.promotion_confidence)
            for name, values in scores.items()}


def weigh(use_case: UseCase, metric: Metric, y: np.ndarray, dates: np.ndarray | None, challenger: np.ndarray,
          baselines: dict[str, tuple[float, np.ndarray]], champion: np.ndarray | None) -> Evidence:
    """The challenger's gains over the best baseline and over the champion, with their intervals.

    ``baselines`` maps each baseline to its holdout value and scores. ROC AUC on rows without an
    order uses DeLong's closed form; every other case a paired bootstrap.
    """
    confidence = use_case.promotion_confidence
    best = best_baseline(metric, {name: value for name, (value, _) in baselines.items()})
    try:
        draws = None if _uses_delong(metric, dates) else _draws(use_case, y, dates)
        reference = baselines[best][1] if best else None
        vs_baseline, vs_champion = (None if scores is None else
                                    _gain(metric, y, dates, challenger, scores, confidence, draws)
                                    for scores in (reference, champion))
    except ValueError as exc:
        return Evidence(confidence, error=str(exc))
    return Evidence(confidence, vs_baseline, vs_champion)


def _uses_delong(metric: Metric, dates: np.ndarray | None) -> bool:
    return metric.name == "roc_auc" and dates is None


def _gain(metric: Metric, y: np.ndarray, dates: np.ndarray | None, challenger: np.ndarray,
          reference: np.ndarray, confidence: float, draws: list[np.ndarray] | None) -> Interval:
    if draws is None:
        return delong_auc_difference(y, challenger, reference, confidence)
    return paired_bootstrap(gain_metric(metric), y, challenger, reference, confidence, draws=draws,
                            dates=dates)
