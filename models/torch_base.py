"""The training engine shared by every PyTorch estimator in the zoo.

Subclasses supply the network and the loss; this base owns everything that must behave the same way
across them: input checks, standardisation, seeding, the time-ordered validation slice, early
stopping and pickling.
"""

from __future__ import annotations

import contextlib
import copy
import os
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from models import interrupt

# Seeding and the determinism switches are process-wide in torch, so two fits in parallel threads
# would draw from each other's random streams. Fits take turns; other families still run alongside.
_TORCH_GLOBAL_STATE = threading.RLock()

# Inference in chunks keeps memory flat when predicting on a whole history at once.
_PREDICT_CHUNK = 8192


def resolve_device(device: str) -> torch.device:
    """Turn the ``device`` hyperparameter into a concrete torch device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available")
    return resolved


def seed_from(random_state: Any) -> int:
    """An integer seed; ``None`` or a RandomState draw one so sklearn conventions keep working."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextlib.contextmanager
def deterministic(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch and force deterministic kernels, then give the caller's global state back.

    Forking the RNG means a fit never shifts the random stream of code around it, and restoring
    the determinism flags means one estimator does not silently slow down unrelated torch work.
    """
    if device.type == "cuda":
        # cuBLAS reads this when it first starts; without it deterministic matmuls raise on CUDA.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    devices = [device.index or 0] if device.type == "cuda" else []
    previous = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    with _TORCH_GLOBAL_STATE, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        # warn_only: a CUDA op without a deterministic kernel should warn, not abort a training run.
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
            torch.backends.cudnn.deterministic = previous[2]
            torch.backends.cudnn.benchmark = previous[3]


def validation_split(n_rows: int, fraction: float) -> int:
    """How many rows train; the rest, taken from the end, validate.

    The slice comes from the end rather than at random because rows may be time-ordered, and a
    random split would let the model validate on days that sit between its training days.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation_fraction must be in [0, 1), got {fraction!r}")
    n_val = int(np.floor(n_rows * fraction))
    if n_rows - n_val < 1:
        raise ValueError(f"{n_rows} rows leave nothing to train on with validation_fraction={fraction}")
    return n_rows - n_val


class TorchEstimatorBase(BaseEstimator):
    """Fits a small torch network with early stopping; subclasses define the network and the task.

    Subclasses set the hyperparameters in their own ``__init__`` (sklearn reads the signature) and
    implement ``_build_module``, ``_make_loss`` and the task-facing ``fit``/``predict`` methods.
    """

    # -- hooks -------------------------------------------------------------------------------

    def _build_module(self, n_features: int) -> nn.Module:
        raise NotImplementedError

    def _make_loss(self, y_train: np.ndarray, device: torch.device) -> nn.Module:
        raise NotImplementedError

    def _check_feature_count(self, n_features: int) -> None:
        """Reject inputs the network cannot take; the default network takes any width."""

    def _shape_inputs(self, X: np.ndarray) -> np.ndarray:
        """Lay a standardised 2D batch out the way the network reads it."""
        return X

    # -- engine ------------------------------------------------------------------------------

    # Not named _validate_params: sklearn's BaseEstimator uses that name for its own constraint checks.
    def _check_hyperparameters(self) -> None:
        for name in ("learning_rate", "batch_size", "max_epochs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1, got {self.patience!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def _check_X(self, X: Any, reset: bool) -> np.ndarray:
        # check_array inside validate_data already rejects anything that is not 2D.
        X = validate_data(self, X, reset=reset, dtype=np.float32)
        self._check_feature_count(X.shape[1])
        return X

    def _check_X_y(self, X: Any, y: Any, **target_checks: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate training data and record ``n_features_in_`` (and ``feature_names_in_``)."""
        X, y = validate_data(self, X, y, dtype=np.float32, **target_checks)
        self._check_feature_count(X.shape[1])
        return X, y

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean_) / self.scale_).astype(np.float32, copy=False)

    def _fit_network(self, X: np.ndarray, target: np.ndarray) -> None:
        """Train on ``X`` (already validated) against a float32 ``target`` of shape (n, 1)."""
        self._check_hyperparameters()
        n_train = validation_split(len(X), self.validation_fraction)
        self.device_ = resolve_device(self.device)

        # Statistics come from the training rows only so the validation slice stays unseen.
        train_rows = X[:n_train].astype(np.float64)
        self.mean_ = train_rows.mean(axis=0).astype(np.float32)
        scale = train_rows.std(axis=0)
        # A constant column would divide by zero; leaving it unscaled maps it to zero instead.
        self.scale_ = np.where(scale > 0, scale, 1.0).astype(np.float32)

        inputs = torch.from_numpy(self._shape_inputs(self._standardise(X))).to(self.device_)
        targets = torch.from_numpy(np.ascontiguousarray(target, dtype=np.float32)).to(self.device_)
        seed = seed_from(self.random_state)

        with deterministic(seed, self.device_):
            module = self._build_module(X.shape[1]).to(self.device_)
            loss_fn = self._make_loss(target[:n_train], self.device_)
            optimiser = torch.optim.AdamW(module.parameters(), lr=self.learning_rate,
                                          weight_decay=self.weight_decay)
            train_set = TensorDataset(inputs[:n_train], targets[:n_train])
            # Whole batches of indices per step avoid per-row collation, which dominates on small nets.
            # The shuffle order gets its own seeded generator so it does not depend on how many
            # random numbers weight initialisation happened to draw.
            generator = torch.Generator().manual_seed(seed)
            sampler = BatchSampler(RandomSampler(train_set, generator=generator),
                                   batch_size=int(self.batch_size), drop_last=False)
            loader = DataLoader(train_set, sampler=sampler, batch_size=None)
            val_x, val_y = inputs[n_train:], targets[n_train:]

            best_loss, best_state, best_epoch, stale = np.inf, None, 0, 0
            self.loss_curve_: list[float] = []
            self.validation_loss_curve_: list[float] = []
            for epoch in range(1, int(self.max_epochs) + 1):
                # Between epochs a fit can stop cleanly when the command is asked to stop.
                interrupt.check()
                module.train()
                total = 0.0
                for batch_x, batch_y in loader:
                    optimiser.zero_grad(set_to_none=True)
                    loss = loss_fn(module(batch_x), batch_y)
                    loss.backward()
                    optimiser.step()
                    total += loss.item() * len(batch_x)
                self.loss_curve_.append(total / n_train)
                if len(val_x) == 0:
                    continue
                module.eval()
                with torch.no_grad():
                    val_loss = float(loss_fn(module(val_x), val_y).item())
                self.validation_loss_curve_.append(val_loss)
                if val_loss < best_loss - self.tol:
                    best_loss, best_epoch, stale = val_loss, epoch, 0
                    best_state = copy.deepcopy(module.state_dict())
                else:
                    stale += 1
                    if stale >= self.patience:
                        break

        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        self.module_ = module
        self.n_epochs_ = epoch
        self.best_epoch_ = best_epoch if best_state is not None else epoch
        self.best_validation_loss_ = float(best_loss) if best_state is not None else None

    def _forward(self, X: Any) -> np.ndarray:
        """Raw network outputs for new rows, as a float64 numpy vector on the CPU."""
        check_is_fitted(self, "module_")
        X = self._shape_inputs(self._standardise(self._check_X(X, reset=False)))
        outputs = []
        self.module_.eval()
        with torch.no_grad():
            for start in range(0, len(X), _PREDICT_CHUNK):
                chunk = torch.from_numpy(X[start:start + _PREDICT_CHUNK]).to(self.device_)
                outputs.append(self.module_(chunk).reshape(-1).cpu().numpy())
        return np.concatenate(outputs).astype(np.float64)

    # -- pickling ----------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        module = state.get("module_")
        # CUDA tensors would only unpickle on a machine with a GPU; a CPU copy loads anywhere.
        if module is not None and self.device_.type != "cpu":
            state["module_"] = copy.deepcopy(module).cpu()
            state["device_"] = torch.device("cpu")
        return state
