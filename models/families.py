"""The model families candidates are built from: one declaration each, read by everything else.

A family declares how to build its estimator for a task, which modules to load ahead of training
(while a Prefect server boots), and which distributions a logged model of it needs. Every family
starts from defaults that are sensible on ~10k rows x ~30 features, and a use case's ``params``
override them, so it can tune one knob without restating the rest. To add a family, write its
builder and add one ``ModelFamily`` to ``FAMILIES`` (or call ``register``); optionally declare its
search space, a function of the task returning the ranges a tuning search may try (see
``models.search_space``), centred on the builder's defaults. A family without one is not tuned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.search_space import Choice, FloatRange, IntRange, SearchSpace

TASKS = ("classification", "regression")
# What every logged model needs to load: the pipeline around the estimator, and the pickle format.
BASE_REQUIREMENTS = ("scikit-learn", "pandas", "numpy", "scipy", "cloudpickle")
# Names a family had before, so an old definition gets told the new one rather than a guess.
RENAMED = {"forest": "hist_boosting"}

Builder = Callable[[str, dict[str, Any], int, "float | None"], BaseEstimator]
"""(task, params, random_state, class_ratio) -> an unfitted estimator."""
SpaceOf = Callable[[str], SearchSpace]
"""task -> the hyperparameters a search may vary, by the names the builder's ``params`` take."""


@dataclass(frozen=True)
class ModelFamily:
    name: str
    description: str
    build: Builder
    preload: tuple[str, ...] = ()
    """Modules to import before training starts, e.g. ``torch``: they load while a server boots."""
    requirements: tuple[str, ...] = ()
    """Distributions a logged model needs beyond ``BASE_REQUIREMENTS``."""
    search_space: SpaceOf | None = None
    """Where tuning searches, per task; ``None``: the family is trained with its defaults only."""


def _linear(task: str, params: dict[str, Any], random_state: int, class_ratio: float | None) -> BaseEstimator:
    # Scaling first: raw-scale features make lbfgs crawl and let the penalty hit columns unevenly.
    if task == "classification":
        model = LogisticRegression(**{"class_weight": "balanced", "max_iter": 5000, "C": 1.0,
                                      "random_state": random_state, **params})
    else:
        model = Ridge(**{"alpha": 1.0, **params})
    return make_pipeline(StandardScaler(), model)


def _hist_boosting(task: str, params: dict[str, Any], random_state: int,
                   class_ratio: float | None) -> BaseEstimator:
    # Histogram boosting rather than a random forest: it fits 12k rows in about a second. Each
    # iteration costs time in proportion to the rows, so a higher learning rate and half the
    # iterations keep a million rows affordable; on the samples it scores as well as 0.05 x 200.
    defaults: dict[str, Any] = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 31,
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
    # min_child_weight and reg_lambda are XGBoost's own defaults, stated so the search space can
    # be seen to contain them.
    defaults: dict[str, Any] = {"n_estimators": 300, "learning_rate": 0.05, "max_depth": 4,
                                "subsample": 0.8, "colsample_bytree": 0.8, "min_child_weight": 1.0,
                                "reg_lambda": 1.0, "tree_method": "hist", "n_jobs": 2,
                                "random_state": random_state}
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


def _xgboost_dask(task: str, params: dict[str, Any], random_state: int,
                  class_ratio: float | None) -> BaseEstimator:
    from models.dask_xgboost import DaskXGBClassifier, DaskXGBRegressor

    if task == "classification":
        return DaskXGBClassifier(**{"scale_pos_weight": class_ratio or 1.0, "random_state": random_state,
                                    **params})
    return DaskXGBRegressor(**{"random_state": random_state, **params})


# Search spaces are sized for ~10k rows x ~30-130 features. Boosting keeps early stopping (or a
# bounded number of rounds) so that no corner of a space costs much more than the defaults.


def _linear_space(task: str) -> SearchSpace:
    if task == "classification":
        return {"C": FloatRange(1e-3, 10.0, log=True)}
    return {"alpha": FloatRange(1e-2, 100.0, log=True)}


def _hist_boosting_space(task: str) -> SearchSpace:
    return {"learning_rate": FloatRange(0.02, 0.3, log=True),
            "max_leaf_nodes": IntRange(8, 64, log=True),
            "min_samples_leaf": IntRange(5, 200, log=True),
            "l2_regularization": FloatRange(1e-3, 10.0, log=True)}


def _xgboost_dask_space(task: str) -> SearchSpace:
    # The Dask estimator takes only these of XGBoost's parameters.
    return {"learning_rate": FloatRange(0.01, 0.3, log=True),
            "max_depth": IntRange(2, 8),
            "subsample": FloatRange(0.5, 1.0),
            "colsample_bytree": FloatRange(0.3, 1.0),
            "n_estimators": IntRange(100, 600)}


def _xgboost_space(task: str) -> SearchSpace:
    return {**_xgboost_dask_space(task),
            "min_child_weight": FloatRange(1.0, 30.0, log=True),
            "reg_lambda": FloatRange(0.1, 20.0, log=True)}


def _network_space() -> SearchSpace:
    return {"learning_rate": FloatRange(1e-4, 1e-2, log=True),
            "dropout": FloatRange(0.0, 0.5),
            "weight_decay": FloatRange(1e-6, 1e-2, log=True)}


def _mlp_space(task: str) -> SearchSpace:
    return {**_network_space(), "hidden_sizes": Choice(((32,), (64, 32), (128, 64)))}


def _gru_space(task: str) -> SearchSpace:
    return {**_network_space(), "hidden_size": Choice((16, 32, 64))}


FAMILIES: dict[str, ModelFamily] = {family.name: family for family in (
    ModelFamily("linear", "logistic regression (balanced class weights) / ridge, scaled inputs", _linear,
                search_space=_linear_space),
    ModelFamily("hist_boosting", "histogram gradient boosting (scikit-learn)", _hist_boosting,
                search_space=_hist_boosting_space),
    ModelFamily("xgboost", "XGBoost, scale_pos_weight = negatives per positive", _xgboost,
                preload=("xgboost",), requirements=("xgboost-cpu",), search_space=_xgboost_space),
    ModelFamily("mlp", "PyTorch feed-forward network", _mlp, preload=("torch",), requirements=("torch",),
                search_space=_mlp_space),
    ModelFamily("gru", "PyTorch GRU over a window of past rows", _gru, preload=("torch",),
                requirements=("torch",), search_space=_gru_space),
    ModelFamily("xgboost_dask", "XGBoost trained on Dask collections (DaskQuantileDMatrix), for "
                "training sets too big for one worker", _xgboost_dask, preload=("xgboost", "distributed"),
                requirements=("xgboost-cpu",), search_space=_xgboost_dask_space),
)}


def register(family: ModelFamily) -> None:
    """Make ``family`` available to use case definitions under its name."""
    FAMILIES[family.name] = family


def unknown_family_message(name: str) -> str:
    if name in RENAMED:
        return f"unknown model {name!r} (renamed {RENAMED[name]!r})"
    return f"unknown model {name!r} (available: {', '.join(FAMILIES)})"


def build_candidate(name: str, task: str, params: dict[str, Any] | None = None,
                    random_state: int = 0, class_ratio: float | None = None) -> BaseEstimator:
    """A fresh, unfitted estimator of family ``name`` for ``task``.

    ``params`` override the family's defaults and are passed to the final estimator; a
    ``random_state`` inside ``params`` wins over the argument. ``class_ratio`` (negatives per
    positive in the training rows) lets families without a ``class_weight`` balance the classes.
    """
    if name not in FAMILIES:
        raise ValueError(unknown_family_message(name))
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; available: {', '.join(TASKS)}")
    return FAMILIES[name].build(task, dict(params or {}), random_state, class_ratio)
