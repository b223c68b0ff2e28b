"""XGBoost trained on Dask collections, for training sets bigger than one worker should hold.

The rows are cut into chunks of a Dask array, turned into a ``DaskQuantileDMatrix`` (histogram
bins computed chunk by chunk, no dense copy of the whole matrix in one place) and trained by the
workers together. The fitted booster is an ordinary XGBoost model: predictions need no cluster,
so a logged model scores raw rows anywhere.

The cluster is, in order: the scheduler named by ``scheduler``; the one the fit runs inside (a
candidate trained on a Dask worker); else a cluster of threads in this process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted


@contextlib.contextmanager
def _client(scheduler: str | None) -> Iterator[Any]:
    from distributed import Client, LocalCluster, worker_client

    if scheduler:
        with Client(scheduler, timeout=30) as client:
            yield client
    elif on_dask_worker():
        # Inside a task on a worker: give the worker's slot back while the cluster trains.
        with worker_client() as client:
            yield client
    else:
        with LocalCluster(n_workers=1, threads_per_worker=os.cpu_count() or 1, processes=False,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client


def on_dask_worker() -> bool:
    """Whether this code runs inside a task on a Dask worker."""
    # Asked before the training block runs: an error raised by the training itself must surface as
    # it is, never be taken for "not on a worker".
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        get_worker()
        return True
    return False


class _DaskXGBoost(BaseEstimator):
    _objective = ""

    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.05, max_depth: int = 4,
                 subsample: float = 0.8, colsample_bytree: float = 0.8, scale_pos_weight: float = 1.0,
                 max_bin: int = 256, chunk_rows: int = 100_000, random_state: int = 0,
                 scheduler: str | None = None) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.scale_pos_weight = scale_pos_weight
        self.max_bin = max_bin
        self.chunk_rows = chunk_rows
        self.random_state = random_state
        self.scheduler = scheduler

    def _booster_params(self) -> dict[str, Any]:
        params = {"objective": self._objective, "tree_method": "hist", "eta": self.learning_rate,
                  "max_depth": self.max_depth, "subsample": self.subsample,
                  "colsample_bytree": self.colsample_bytree, "max_bin": self.max_bin,
                  "seed": self.random_state}
        if self._objective == "binary:logistic":
            params.update(scale_pos_weight=self.scale_pos_weight, eval_metric="logloss")
        return params

    def fit(self, X: Any, y: Any) -> _DaskXGBoost:
        import dask.array as da
        import xgboost.dask  # the Dask interface is a submodule xgboost does not import itself

        features = np.asarray(X, dtype=np.float32)
        target = np.asarray(y, dtype=np.float32)
        if features.ndim != 2 or len(features) != len(target):
            raise ValueError(f"X must be 2-D with one row per target, got {features.shape} and "
                             f"{target.shape}")
        chunks = (max(1, self.chunk_rows), features.shape[1])
        with _client(self.scheduler) as client:
            matrix = xgboost.dask.DaskQuantileDMatrix(
                client, da.from_array(features, chunks=chunks), da.from_array(target, chunks=chunks[0]),
                max_bin=self.max_bin)
            trained = xgboost.dask.train(client, self._booster_params(), matrix,
                                         num_boost_round=self.n_estimators)
        self.booster_ = trained["booster"]
        self.n_features_in_ = features.shape[1]
        return self

    def _raw_predictions(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "booster_")
        return np.asarray(self.booster_.inplace_predict(np.asarray(X, dtype=np.float32)), dtype=float)


class DaskXGBClassifier(ClassifierMixin, _DaskXGBoost):
    """Binary classifier; ``scale_pos_weight`` balances the classes as XGBoost's own does."""

    _objective = "binary:logistic"

    def fit(self, X: Any, y: Any) -> DaskXGBClassifier:
        labels = np.unique(np.asarray(y))
        if not set(labels.tolist()) <= {0, 1}:
            raise ValueError(f"DaskXGBClassifier takes 0/1 targets, got {labels[:5].tolist()}")
        super().fit(X, y)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        positive = self._raw_predictions(X)
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:
        return (self._raw_predictions(X) >= 0.5).astype(int)


class DaskXGBRegressor(RegressorMixin, _DaskXGBoost):
    _objective = "reg:squarederror"

    def predict(self, X: Any) -> np.ndarray:
        return self._raw_predictions(X)
