"""One harness that fits and scores any estimator on a split plan, the same way for every family.

It knows nothing about tracking or orchestration: it takes a factory for a fresh estimator, the
raw frame, the target and a plan, and returns everything a caller needs to compare and log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from models import interrupt
from models import metrics as metric_registry
from models.splits import Fold, SplitPlan


def positive_scores(estimator: BaseEstimator, X: Any, task: str) -> np.ndarray:
    """The probability of class 1 for classification, the prediction for regression."""
    if task == "classification":
        probabilities = estimator.predict_proba(X)
        classes = list(getattr(estimator, "classes_", [0, 1]))
        return np.asarray(probabilities)[:, classes.index(1)].astype(float)
    return np.asarray(estimator.predict(X), dtype=float).reshape(-1)


@dataclass
class FoldResult:
    metrics: dict[str, float]
    scores: np.ndarray
    fit_seconds: float
    score_seconds: float


@dataclass
class Evaluation:
    """A candidate's (or baseline's, or champion's) record on one plan."""

    name: str
    folds: list[FoldResult] = field(default_factory=list)
    holdout: FoldResult | None = None
    model: BaseEstimator | None = None
    """Fitted on all training rows; this is what gets logged and registered."""
    pooled_positions: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=int))
    pooled_scores: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def cv_metrics(self) -> dict[str, float]:
        """Mean over the folds, ignoring folds where a metric is undefined."""
        if not self.folds:
            return {}
        names = self.folds[0].metrics
        return {name: _nanmean([f.metrics[name] for f in self.folds]) for name in names}

    @property
    def cv_std(self) -> dict[str, float]:
        if not self.folds:
            return {}
        names = self.folds[0].metrics
        return {name: _nanstd([f.metrics[name] for f in self.folds]) for name in names}

    @property
    def holdout_metrics(self) -> dict[str, float]:
        return dict(self.holdout.metrics) if self.holdout else {}

    @property
    def fit_seconds(self) -> float:
        parts = [*self.folds, *([self.holdout] if self.holdout else [])]
        return float(sum(p.fit_seconds for p in parts))


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _nanstd(values: list[float]) -> float:
    finite = [v for v in values if not np.isnan(v)]
    return float(np.std(finite)) if finite else float("nan")


def _rows(frame: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    return frame.iloc[positions]


def score_fold(model: BaseEstimator, frame: pd.DataFrame, y: np.ndarray, fold: Fold, task: str,
               metric_names: list[str]) -> FoldResult:
    """Scores of an already fitted model on a fold's test rows, and their metrics."""
    started = time.perf_counter()
    scored = positive_scores(model, _rows(frame, fold.scored), task)
    scores = scored[fold.test_within_scored()]
    elapsed = time.perf_counter() - started
    values = metric_registry.compute(task, metric_names, y[fold.test], scores)
    return FoldResult(values, scores, 0.0, elapsed)


def fit_and_score(make_estimator: Callable[[], BaseEstimator], frame: pd.DataFrame, y: np.ndarray,
                  fold: Fold, task: str, metric_names: list[str]) -> tuple[BaseEstimator, FoldResult]:
    # Every fold and the final fit start here: the place to stop cleanly when asked to.
    interrupt.check()
    model = make_estimator()
    started = time.perf_counter()
    model.fit(_rows(frame, fold.train), y[fold.train])
    fit_seconds = time.perf_counter() - started
    result = score_fold(model, frame, y, fold, task, metric_names)
    result.fit_seconds = fit_seconds
    return model, result


def evaluate(
    name: str,
    make_estimator: Callable[[], BaseEstimator],
    frame: pd.DataFrame,
    y: np.ndarray,
    plan: SplitPlan,
    task: str,
    metric_names: list[str],
    progress: Callable[[str], None] | None = None,
    *,
    cv: list[FoldResult] | None = None,
) -> Evaluation:
    """Cross-validate on the plan's folds, then fit on all training rows and score the holdout.

    ``y`` holds a target for every row of ``frame`` (NaN where there is none); the plan decides
    which rows are used. ``cv``, one result per plan fold of this very estimator (a tuning
    search's winner), stands in for the folds, so they are not fitted again.
    """
    y = np.asarray(y)
    evaluation = Evaluation(name)
    if cv is not None:
        if len(cv) != len(plan.folds):
            raise ValueError(f"{name}: {len(cv)} fold results given for a plan of {len(plan.folds)} folds")
        evaluation.folds = list(cv)
    else:
        evaluation.folds = _cross_validate(name, make_estimator, frame, y, plan, task, metric_names, progress)
    evaluation.model, evaluation.holdout = fit_and_score(
        make_estimator, frame, y, plan.final, task, metric_names)
    if progress:
        progress(f"{name}: final fit on {len(plan.final.train)} rows in "
                 f"{evaluation.holdout.fit_seconds:.1f}s")
    parts = [*zip(plan.folds, evaluation.folds, strict=True), (plan.final, evaluation.holdout)]
    evaluation.pooled_positions = np.concatenate([fold.test for fold, _ in parts])
    evaluation.pooled_scores = np.concatenate([result.scores for _, result in parts])
    return evaluation


def _cross_validate(name: str, make_estimator: Callable[[], BaseEstimator], frame: pd.DataFrame,
                    y: np.ndarray, plan: SplitPlan, task: str, metric_names: list[str],
                    progress: Callable[[str], None] | None) -> list[FoldResult]:
    results = []
    for number, fold in enumerate(plan.folds, start=1):
        _, result = fit_and_score(make_estimator, frame, y, fold, task, metric_names)
        results.append(result)
        if progress:
            progress(f"{name}: fold {number}/{len(plan.folds)} done in {result.fit_seconds:.1f}s")
    return results


def evaluate_fitted(name: str, model: BaseEstimator, frame: pd.DataFrame, y: np.ndarray, plan: SplitPlan,
                    task: str, metric_names: list[str]) -> Evaluation:
    """Holdout metrics of a model fitted elsewhere (the current champion): no folds, no refit."""
    evaluation = Evaluation(name, model=model)
    evaluation.holdout = score_fold(model, frame, np.asarray(y), plan.final, task, metric_names)
    return evaluation
