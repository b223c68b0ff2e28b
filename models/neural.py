"""PyTorch models with the scikit-learn estimator API: a feed-forward net and a GRU over past days.

Each estimator lists its hyperparameters explicitly in ``__init__`` and stores them unchanged, which
is what lets ``get_params``, ``set_params`` and ``sklearn.base.clone`` work in searches and pipelines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from torch import nn

from models.networks import FeedForward, RecurrentHead
from models.torch_base import TorchEstimatorBase, validation_split


class _BinaryClassifier(ClassifierMixin, TorchEstimatorBase):
    """Two-class classification with one logit per row and BCE-with-logits loss."""

    def fit(self, X: Any, y: Any) -> _BinaryClassifier:
        X, y = validate_data(self, X, y, dtype=np.float32)
        self._check_feature_count(X.shape[1])
        check_classification_targets(y)
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(f"{type(self).__name__} is binary; y holds {len(self.classes_)} classes")
        if self.class_weight not in (None, "balanced"):
            raise ValueError(f"class_weight must be None or 'balanced', got {self.class_weight!r}")
        self._fit_network(X, encoded.astype(np.float32).reshape(-1, 1))
        return self

    def _make_loss(self, y_train: np.ndarray, device: torch.device) -> nn.Module:
        if self.class_weight != "balanced":
            return nn.BCEWithLogitsLoss()
        positives = float(y_train.sum())
        negatives = float(len(y_train)) - positives
        # Without positives in the training rows there is nothing to up-weight.
        ratio = negatives / positives if positives > 0 else 1.0
        return nn.BCEWithLogitsLoss(pos_weight=torch.tensor([ratio], dtype=torch.float32, device=device))

    def predict_proba(self, X: Any) -> np.ndarray:
        logits = self._forward(X)
        # exp(-log(1 + exp(-z))) is the sigmoid without overflow for large negative logits.
        positive = np.exp(-np.logaddexp(0.0, -logits))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


class _Regressor(RegressorMixin, TorchEstimatorBase):
    """Single-target regression on a standardised target with mean squared error."""

    def fit(self, X: Any, y: Any) -> _Regressor:
        X, y = validate_data(self, X, y, dtype=np.float32, y_numeric=True)
        self._check_feature_count(X.shape[1])
        y = np.asarray(y, dtype=np.float64)
        # The target is scaled on training rows too, so raw prices or counts train as well as returns.
        n_train = validation_split(len(y), self.validation_fraction)
        self.y_mean_ = float(y[:n_train].mean())
        spread = float(y[:n_train].std())
        self.y_scale_ = spread if spread > 0 else 1.0
        self._fit_network(X, ((y - self.y_mean_) / self.y_scale_).astype(np.float32).reshape(-1, 1))
        return self

    def _make_loss(self, y_train: np.ndarray, device: torch.device) -> nn.Module:
        return nn.MSELoss()

    def predict(self, X: Any) -> np.ndarray:
        return self._forward(X) * self.y_scale_ + self.y_mean_


class _FeedForwardNet:
    """Architecture hooks for the MLP estimators."""

    def _build_module(self, n_features: int) -> nn.Module:
        return FeedForward(n_features, self.hidden_sizes, self.dropout)


class _RecurrentNet:
    """Architecture hooks for the GRU estimators: each flat row is ``window`` blocks, oldest first."""

    def _check_feature_count(self, n_features: int) -> None:
        window = self.window
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        if n_features % window != 0:
            raise ValueError(f"{n_features} features cannot be split into window={window} equal blocks; "
                             "n_features must be window * n_base_features")

    def _shape_inputs(self, X: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(X.reshape(len(X), int(self.window), -1))

    def _build_module(self, n_features: int) -> nn.Module:
        self.n_base_features_ = n_features // int(self.window)
        return RecurrentHead(self.n_base_features_, int(self.hidden_size), int(self.num_layers), self.dropout)


class MLPClassifier(_FeedForwardNet, _BinaryClassifier):
    """Feed-forward binary classifier; ``predict_proba`` returns (n, 2) in the order of ``classes_``."""

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.1,
        weight_decay: float = 1e-4,
        tol: float = 1e-4,
        class_weight: str | None = None,
        random_state: int | None = 0,
        device: str = "auto",
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.weight_decay = weight_decay
        self.tol = tol
        self.class_weight = class_weight
        self.random_state = random_state
        self.device = device


class MLPRegressor(_FeedForwardNet, _Regressor):
    """Feed-forward regressor for a single target."""

    def __init__(
        self,
        hidden_sizes: Sequence[int] = (64, 32),
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.1,
        weight_decay: float = 1e-4,
        tol: float = 1e-4,
        random_state: int | None = 0,
        device: str = "auto",
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.weight_decay = weight_decay
        self.tol = tol
        self.random_state = random_state
        self.device = device


class GRUClassifier(_RecurrentNet, _BinaryClassifier):
    """GRU binary classifier over ``window`` days; X columns are ``window`` equal blocks, oldest first."""

    def __init__(
        self,
        window: int = 1,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.1,
        weight_decay: float = 1e-4,
        tol: float = 1e-4,
        class_weight: str | None = None,
        random_state: int | None = 0,
        device: str = "auto",
    ) -> None:
        self.window = window
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.weight_decay = weight_decay
        self.tol = tol
        self.class_weight = class_weight
        self.random_state = random_state
        self.device = device


class GRURegressor(_RecurrentNet, _Regressor):
    """GRU regressor over ``window`` days; X columns are ``window`` equal blocks, oldest first."""

    def __init__(
        self,
        window: int = 1,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.1,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        max_epochs: int = 100,
        patience: int = 10,
        validation_fraction: float = 0.1,
        weight_decay: float = 1e-4,
        tol: float = 1e-4,
        random_state: int | None = 0,
        device: str = "auto",
    ) -> None:
        self.window = window
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.weight_decay = weight_decay
        self.tol = tol
        self.random_state = random_state
        self.device = device
