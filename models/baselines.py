"""Naive forecasts that every candidate has to beat before it may become champion.

They are ordinary estimators, so they run through the same folds, holdout and metrics as the
candidates and nobody has to trust a number computed some other way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.utils.validation import check_is_fitted


class AlwaysUp(ClassifierMixin, BaseEstimator):
    """Predicts an up move every day, with the up-day frequency of training as its probability.

    A probability of exactly 1 would give an infinite log loss on the first down day, which says
    nothing useful; the training frequency is what "always up" honestly knows.
    """

    def fit(self, X: Any, y: Any) -> AlwaysUp:
        y = np.asarray(y)
        self.classes_ = np.array([0, 1])
        self.up_rate_ = float(np.mean(y == 1)) if len(y) else 0.5
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "up_rate_")
        n = len(X)
        return np.column_stack([np.full(n, 1 - self.up_rate_), np.full(n, self.up_rate_)])

    def predict(self, X: Any) -> np.ndarray:
        return np.ones(len(X), dtype=int)


class Persistence(BaseEstimator):
    """Tomorrow repeats today: the sign (or size) of today's move, read from a feature column.

    For classification the probability of an up day is the training frequency of up days after an
    up day (or after a down day), so the forecast is calibrated without learning anything else.
    """

    def __init__(self, column: str = "ret_1", task: str = "classification") -> None:
        self.column = column
        self.task = task

    def _today(self, X: Any) -> np.ndarray:
        if not isinstance(X, pd.DataFrame) or self.column not in X.columns:
            raise ValueError(f"Persistence needs a feature frame with a {self.column!r} column")
        return X[self.column].to_numpy(dtype=float)

    def fit(self, X: Any, y: Any) -> Persistence:
        today = self._today(X)
        y = np.asarray(y, dtype=float)
        if self.task == "classification":
            self.classes_ = np.array([0, 1])
            up_today = today > 0
            overall = float(y.mean()) if len(y) else 0.5
            self.up_after_up_ = float(y[up_today].mean()) if up_today.any() else overall
            self.up_after_down_ = float(y[~up_today].mean()) if (~up_today).any() else overall
        self.n_features_in_ = X.shape[1]
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        if self.task != "classification":
            raise AttributeError("predict_proba is only available for classification")
        check_is_fitted(self, "up_after_up_")
        positive = np.where(self._today(X) > 0, self.up_after_up_, self.up_after_down_)
        return np.column_stack([1 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:
        today = self._today(X)
        if self.task == "classification":
            return (today > 0).astype(int)
        return today


def base_rate(task: str) -> BaseEstimator:
    """The training share of positives (or the training mean) for every row."""
    if task == "classification":
        return DummyClassifier(strategy="prior")
    return DummyRegressor(strategy="mean")


def always_up(task: str) -> BaseEstimator:
    """An up move every day; for regression, the average training move (the drift)."""
    return AlwaysUp() if task == "classification" else DummyRegressor(strategy="mean")


def persistence(task: str, column: str = "ret_1") -> BaseEstimator:
    return Persistence(column=column, task=task)


BASELINES = {"base_rate": base_rate, "always_up": always_up, "persistence": persistence}
"""Baselines by name. ``persistence`` reads a feature, so it runs after the use case's features."""

NEEDS_FEATURES = {"persistence"}


def build_baseline(name: str, task: str) -> BaseEstimator:
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; available: {', '.join(sorted(BASELINES))}")
    return BASELINES[name](task)
