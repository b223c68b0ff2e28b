"""How sure a difference between two models is, on the same holdout rows: intervals for promotion.

Both models score the same rows, so the comparison is paired: each resample draws rows once and
scores both models on them, and what is estimated is the difference of their metric. Rows of a
time series are not independent (neighbouring days share their market), so they are resampled in
blocks of consecutive dates (a moving-block bootstrap). For ROC AUC, DeLong's method gives the
interval of the difference in closed form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

MetricFunction = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Interval:
    """An estimate of ``challenger - reference`` with its two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    method: str

    def beats(self, margin: float) -> bool:
        """Whether even the interval's lower end is above ``margin``."""
        return bool(self.low > margin)

    def text(self, digits: int = 4) -> str:
        return (f"{self.estimate:+.{digits}f} [{self.low:+.{digits}f}, {self.high:+.{digits}f}] "
                f"({self.confidence:.0%}, {self.method})")


def _check(y: np.ndarray, first: np.ndarray, second: np.ndarray, confidence: float) -> None:
    if not (len(y) == len(first) == len(second)) or len(y) == 0:
        raise ValueError(f"targets and both score vectors must be non-empty and of one length, got "
                         f"{len(y)}, {len(first)}, {len(second)}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def resampled_rows(n_rows: int, resamples: int = 1000, seed: int = 0, y: np.ndarray | None = None,
                   stratify: bool = False, dates: np.ndarray | None = None,
                   block: int | None = None) -> list[np.ndarray]:
    """``resamples`` bootstrap draws of row positions in ``range(n_rows)``, to score every model on.

    Drawing once and scoring all models on the same draws keeps every comparison paired.
    ``dates`` (one per row) switches to a moving-block bootstrap over the distinct dates, ``block``
    of them at a time (default: the cube root of their number); ``stratify`` resamples each class
    of ``y`` on its own, so that every draw keeps the holdout's class counts (a rare class may
    otherwise vanish from a draw and leave ROC AUC undefined).
    """
    rng = np.random.default_rng(seed)
    if dates is not None:
        draw = _date_blocks(dates, block, rng)
    else:
        draw = _rows(np.zeros(n_rows) if y is None else np.asarray(y), stratify, rng)
    return [draw() for _ in range(resamples)]


def resampled_values(metric: MetricFunction, y: np.ndarray, scores: np.ndarray,
                     draws: list[np.ndarray]) -> np.ndarray:
    """``metric`` on each draw (NaN where it is undefined on that draw)."""
    y, scores = np.asarray(y, dtype=float), np.asarray(scores, dtype=float)
    return np.array([metric(y[rows], scores[rows]) for rows in draws], dtype=float)


def percentile_range(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The central ``confidence`` share of the finite ``values``; NaNs when too few are finite."""
    finite = values[np.isfinite(values)]
    if len(finite) < max(2, len(values) // 2):
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2
    low, high = np.quantile(finite, [tail, 1 - tail])
    return float(low), float(high)


def paired_bootstrap(metric: MetricFunction, y: np.ndarray, challenger: np.ndarray, reference: np.ndarray,
                     confidence: float = 0.95, resamples: int = 1000, dates: np.ndarray | None = None,
                     block: int | None = None, stratify: bool = False, seed: int = 0,
                     draws: list[np.ndarray] | None = None) -> Interval:
    """Percentile interval of ``metric(challenger) - metric(reference)`` over resampled holdout rows.

    ``draws`` (from ``resampled_rows``) reuses draws already made; otherwise they are made here from
    ``resamples``, ``dates``, ``block``, ``stratify`` and ``seed``.
    """
    y, challenger, reference = (np.asarray(a, dtype=float) for a in (y, challenger, reference))
    _check(y, challenger, reference, confidence)
    if draws is None:
        draws = resampled_rows(len(y), resamples, seed, y, stratify, dates, block)
    differences = (resampled_values(metric, y, challenger, draws)
                   - resampled_values(metric, y, reference, draws))
    low, high = percentile_range(differences, confidence)
    if low != low:
        undefined = int((~np.isfinite(differences)).sum())
        raise ValueError(f"the metric was undefined on {undefined} of {len(draws)} resamples; too few "
                         "holdout rows (of a class) for an interval")
    estimate = metric(y, challenger) - metric(y, reference)
    method = "block bootstrap over dates" if dates is not None else "paired bootstrap"
    return Interval(float(estimate), low, high, confidence, method)


def _rows(y: np.ndarray, stratify: bool, rng: np.random.Generator) -> Callable[[], np.ndarray]:
    groups = [np.flatnonzero(y == value) for value in np.unique(y)] if stratify else [np.arange(len(y))]

    def draw() -> np.ndarray:
        return np.concatenate([rng.choice(group, size=len(group), replace=True) for group in groups])

    return draw


def _date_blocks(dates: np.ndarray, block: int | None, rng: np.random.Generator) -> Callable[[], np.ndarray]:
    """Rows of blocks of consecutive distinct dates, drawn with replacement until as many dates."""
    distinct, position = np.unique(np.asarray(dates), return_inverse=True)
    n_dates = len(distinct)
    length = max(1, min(n_dates, block or round(n_dates ** (1 / 3))))
    rows_of = np.split(np.argsort(position, kind="stable"), np.cumsum(np.bincount(position))[:-1])
    starts = n_dates - length + 1

    def draw() -> np.ndarray:
        first = rng.integers(0, starts, size=-(-n_dates // length))
        chosen = (first[:, None] + np.arange(length)[None, :]).ravel()[:n_dates]
        return np.concatenate([rows_of[d] for d in chosen])

    return draw


def delong_auc_difference(y: np.ndarray, challenger: np.ndarray, reference: np.ndarray,
                          confidence: float = 0.95) -> Interval:
    """DeLong's interval of ``AUC(challenger) - AUC(reference)`` on the same rows (binary ``y``)."""
    y, challenger, reference = (np.asarray(a, dtype=float) for a in (y, challenger, reference))
    _check(y, challenger, reference, confidence)
    positives, negatives = y == 1, y == 0
    m, n = int(positives.sum()), int(negatives.sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong needs at least two rows of each class, got {m} positive, {n} negative")
    aucs, v10, v01 = [], [], []
    for scores in (challenger, reference):
        auc, structural_pos, structural_neg = _placements(scores[positives], scores[negatives])
        aucs.append(auc)
        v10.append(structural_pos)
        v01.append(structural_neg)
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    variance = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    estimate = aucs[0] - aucs[1]
    spread = stats.norm.ppf(1 - (1 - confidence) / 2) * np.sqrt(max(variance, 0.0))
    return Interval(float(estimate), float(estimate - spread), float(estimate + spread), confidence, "DeLong")


def _placements(positive: np.ndarray, negative: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and its structural components, from midranks (ties count half)."""
    m, n = len(positive), len(negative)
    combined = stats.rankdata(np.concatenate([positive, negative]))
    within_pos, within_neg = stats.rankdata(positive), stats.rankdata(negative)
    structural_pos = (combined[:m] - within_pos) / n
    structural_neg = 1.0 - (combined[m:] - within_neg) / m
    return float(structural_pos.mean()), structural_pos, structural_neg
