"""The catalogue of competing candidates: build any of them by name for a classification or regression task.

Every candidate starts from defaults that are sensible on ~10k rows x ~30 features, and ``params``
overrides them, so a use case can tune one knob without restating the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

TASKS = ("classification", "regression")

CANDIDATE_FAMILIES: dict[str, str] = {
    "linear": "sklearn",
    "forest": "sklearn",
    "xgboost": "xgboost",
    "mlp": "pytorch",
    "gru": "pytorch",
}


def _linear(task: str, params: dict[str, Any], random_state: int, class_ratio: float | None) -> BaseEstimator:
    # Scaling first: raw-scale features make lbfgs crawl and let the penalty hit columns unevenly.
    if task == "classification":
        model = LogisticRegression(**{"class_weight": "balanced", "max_iter": 5000, "C": 1.0,
                                      "random_state": random_state, **params})
    else:
        model = Ridge(**{"alpha": 1.0, **params})
    return make_pipeline(StandardScaler(), model)


def _forest(task: str, params: dict[str, Any], random_state: int, class_ratio: float | None) -> BaseEstimator:
    # Histogram boosting rather than a random forest: it fits 12k rows in about a second.
    defaults: dict[str, Any] = {"max_iter": 200, "learning_rate": 0.05, "max_leaf_nodes": 31,
                                "early_stopping": True, "validation_fraction": 0.1,
                                "random_state": random_state}
    if task == "classification":
        return HistGradientBoostingClassifier(**{**defaults, "class_weight": "balanced", **params})
    return HistGradientBoostingRegressor(**{**defaults, **params})


def _xgboost(task: str, params: dict[str, Any], random_state: int,
             class_ratio: float | None) -> BaseEstimator:
    # Imported here so that listing or building other candidates does not load xgboost.
    from xgboost import XGBClassifier, XGBRegressor

    # Two threads: the pipeline may train several candidates side by side on a small machine.
    defaults: dict[str, Any] = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 4,
                                "subsample": 0.8, "colsample_bytree": 0.8, "tree_method": "hist",
                                "n_jobs": 2, "random_state": random_state}
    if task == "classification":
        # XGBoost has no class_weight; weighting positives by the negative/positive ratio is its
        # equivalent of "balanced", and only the caller knows that ratio.
        return XGBClassifier(**{**defaults, "scale_pos_weight": class_ratio or 1.0, "eval_metric": "logloss",
                                **params})
    return XGBRegressor(**{**defaults, **params})


def _mlp(task: str, params: dict[str, Any], random_state: int, class_ratio: float | None) -> BaseEstimator:
    from models.neural import MLPClassifier, MLPRegressor

    if task == "classification":
        return MLPClassifier(**{"class_weight": "balanced", "random_state": random_state, **params})
    return MLPRegressor(**{"random_state": random_state, **params})


def _gru(task: str, params: dict[str, Any], random_state: int, class_ratio: float | None) -> BaseEstimator:
    from models.neural import GRUClassifier, GRURegressor

    if task == "classification":
        return GRUClassifier(**{"class_weight": "balanced", "random_state": random_state, **params})
    return GRURegressor(**{"random_state": random_state, **params})


_BUILDERS: dict[str, Callable[[str, dict[str, Any], int, float | None], BaseEstimator]] = {
    "linear": _linear,
    "forest": _forest,
    "xgboost": _xgboost,
    "mlp": _mlp,
    "gru": _gru,
}


def build_candidate(name: str, task: str, params: dict[str, Any] | None = None,
                    random_state: int = 0, class_ratio: float | None = None) -> BaseEstimator:
    """A fresh, unfitted estimator for candidate ``name`` on ``task``.

    ``params`` override the candidate's defaults and are passed to the final estimator; a
    ``random_state`` inside ``params`` wins over the argument. ``class_ratio`` (negatives per
    positive in the training rows) lets candidates without a ``class_weight`` balance the classes.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown candidate {name!r}; available: {', '.join(sorted(_BUILDERS))}")
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; available: {', '.join(TASKS)}")
    return _BUILDERS[name](task, dict(params or {}), random_state, class_ratio)
