"""PyTorch models with the scikit-learn estimator API: a feed-forward net and a GRU over past days.

Each estimator lists its hyperparameters explicitly in ``__init__`` and stores them unchanged, which
is what lets ``get_params``, ``set_params`` and ``sklearn.base.clone`` work in searches and pipelines.
Training adapts to the number of rows: ``batch_size="auto"`` grows the batch on large data, and
``max_samples`` caps epochs x rows, so a million rows train in a few epochs rather than a hundred.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils import Tags
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from torch import nn

from models.networks import FeedForward, RecurrentHead
from models.torch_base import TorchEstimatorBase, validation_split


class _BinaryClassifier(ClassifierMixin, TorchEstimatorBase):
    """Two-class classification with one logit per row and BCE-with-logits loss.

    ``class_weight`` is None, ``"balanced"`` (positives weighted by the negative/positive ratio of
    the training rows, the same relative weights as sklearn's "balanced") or a dict of class -> weight.
    """

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        # A single logit can only separate two classes; the estimator checks then expect fit to refuse more.
        tags.classifier_tags.multi_class = False
        return tags

    def fit(self, X: Any, y: Any) -> Self:
        """Train on ``X`` (n_samples, n_features) against two-class labels ``y`` of any label type."""
        X, y = self._check_X_y(X, y)
        self.classes_, encoded = self._encode_binary_target(y)
        # Called for its checks: a bad class_weight should fail before any time goes into training.
        self._class_loss_weights(encoded)
        self._fit_network(X, encoded.astype(np.float32).reshape(-1, 1))
        return self

    def _encode_binary_target(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The sorted classes and ``y`` as 0/1 positions in them; anything but two classes is refused."""
        check_classification_targets(y)
        target_type = type_of_target(y, input_name="y")
        if target_type != "binary":
            raise ValueError(f"Only binary classification is supported. The type of the target is "
                             f"{target_type}; {type(self).__name__} is binary.")
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of two classes to train, "
                             f"but y holds only one class: {classes[0]!r}")
        return classes, encoded

    def _class_loss_weights(self, y_train: np.ndarray) -> tuple[float, float]:
        """Loss weights of the (negative, positive) class for the 0/1 training targets."""
        class_weight = self.class_weight
        if class_weight is None:
            return 1.0, 1.0
        if isinstance(class_weight, str) and class_weight == "balanced":
            positives = float(y_train.sum())
            negatives = float(len(y_train)) - positives
            # Without positives in the training rows there is nothing to up-weight.
            return 1.0, (negatives / positives if positives > 0 else 1.0)
        if not isinstance(class_weight, Mapping):
            raise ValueError("class_weight must be None, 'balanced' or a dict mapping classes to weights, "
                             f"got {class_weight!r}")
        negative, positive = compute_class_weight(dict(class_weight), classes=self.classes_, y=self.classes_)
        # The negative weight becomes a divisor in _make_loss, and a zero weight would drop a class.
        if not (negative > 0 and positive > 0):
            raise ValueError(f"class_weight values must be positive, got {class_weight!r}")
        return float(negative), float(positive)

    def _make_loss(self, y_train: np.ndarray, device: torch.device) -> nn.Module:
        if self.class_weight is None:
            return nn.BCEWithLogitsLoss()
        negative, positive = self._class_loss_weights(y_train)
        # pos_weight multiplies only the positive term, so the negative weight scales the whole loss.
        scale = None if negative == 1.0 else torch.tensor([negative], dtype=torch.float32, device=device)
        return nn.BCEWithLogitsLoss(
            weight=scale, pos_weight=torch.tensor([positive / negative], dtype=torch.float32, device=device))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n_samples, 2), columns in the order of ``classes_``."""
        logits = self._forward(X)
        # exp(-log(1 + exp(-z))) is the sigmoid without overflow for large negative logits.
        positive = np.exp(-np.logaddexp(0.0, -logits))
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: Any) -> np.ndarray:
        """The more probable class of each row, as a label from ``classes_``."""
        # Probabilities first: their fitted check must fire before classes_ is looked up.
        is_positive = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[is_positive.astype(int)]


class _Regressor(RegressorMixin, TorchEstimatorBase):
    """Single-target regression on a standardised target with mean squared error."""

    def fit(self, X: Any, y: Any) -> Self:
        """Train on ``X`` (n_samples, n_features) against a numeric target ``y`` of shape (n_samples,)."""
        X, y = self._check_X_y(X, y, y_numeric=True)
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
        """Predicted target of each row, on the scale of the training ``y``."""
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
        batch_size: int | str = "auto",
        max_epochs: int = 100,
        max_samples: int | None = 10_000_000,
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
        self.max_samples = max_samples
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
        batch_size: int | str = "auto",
        max_epochs: int = 100,
        max_samples: int | None = 10_000_000,
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
        self.max_samples = max_samples
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
        batch_size: int | str = "auto",
        max_epochs: int = 100,
        max_samples: int | None = 10_000_000,
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
        self.max_samples = max_samples
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
        batch_size: int | str = "auto",
        max_epochs: int = 100,
        max_samples: int | None = 10_000_000,
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
        self.max_samples = max_samples
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.weight_decay = weight_decay
        self.tol = tol
        self.random_state = random_state
        self.device = device
