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

from models import interrupt

# Seeding and the determinism switches are process-wide in torch, so two fits in parallel threads
# would draw from each other's random streams. Fits take turns; other families still run alongside.
_TORCH_GLOBAL_STATE = threading.RLock()

# Inference in chunks keeps memory flat when predicting on a whole history at once.
_PREDICT_CHUNK = 8192
# Statistics over the training rows in chunks: a float64 copy of a large matrix would double it.
_STATISTICS_CHUNK = 65536

AUTO = "auto"
# batch_size="auto": this many rows per step, more when an epoch would otherwise take more than
# AUTO_STEPS_PER_EPOCH steps. Every step has a fixed cost (the optimiser update, Python), so on
# large data bigger batches do an epoch in far less time.
AUTO_BATCH_ROWS = 256
AUTO_STEPS_PER_EPOCH = 256


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


def rows_per_step(batch_size: int | str, n_train: int) -> int:
    """The batch a fit uses: ``batch_size``, or for ``"auto"`` what keeps an epoch to a bounded number
    of steps."""
    if batch_size == AUTO:
        return max(AUTO_BATCH_ROWS, -(-n_train // AUTO_STEPS_PER_EPOCH))
    return int(batch_size)


def epoch_limit(max_epochs: int, max_samples: int | None, n_train: int) -> int:
    """``max_epochs``, fewer when that many epochs would show the network more than ``max_samples``
    rows: on large data each epoch teaches more, so fewer are needed."""
    if max_samples is None:
        return int(max_epochs)
    return max(1, min(int(max_epochs), -(-int(max_samples) // max(n_train, 1))))


def column_statistics(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each column, in float64 one chunk of rows at a time.

    Up to one chunk this is exactly ``X.astype(float64).mean(axis=0)`` and ``.std(axis=0)``.
    """
    chunks = [X[start:start + _STATISTICS_CHUNK] for start in range(0, len(X), _STATISTICS_CHUNK)]
    rows = max(len(X), 1)
    mean = sum(chunk.astype(np.float64).sum(axis=0) for chunk in chunks) / rows
    squares = sum(np.square(chunk.astype(np.float64) - mean).sum(axis=0) for chunk in chunks)
    return mean, np.sqrt(squares / rows)


def shuffled_batches(n_rows: int, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Row positions of each batch of one epoch, without a Python list of indices per batch, whose
    collation dominated an epoch on large data.

    The random draws are those of torch's ``DataLoader`` over a ``BatchSampler`` of a
    ``RandomSampler`` with the same generator: the loader takes a seed from the global generator
    each epoch (which moves the dropout masks), and the sampler one more permutation once it runs
    out. Drawing both keeps a seeded fit identical to one trained with torch's loader.
    """
    torch.empty((), dtype=torch.int64).random_()
    order = torch.randperm(n_rows, generator=generator)
    torch.randperm(n_rows, generator=generator)
    return order.split(batch)


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
        for name in ("learning_rate", "max_epochs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if self.batch_size != AUTO and (isinstance(self.batch_size, str) or self.batch_size <= 0):
            raise ValueError(f"batch_size must be positive or '{AUTO}', got {self.batch_size!r}")
        if self.max_samples is not None and self.max_samples <= 0:
            raise ValueError(f"max_samples must be positive or None, got {self.max_samples!r}")
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
        mean, scale = column_statistics(X[:n_train])
        self.mean_ = mean.astype(np.float32)
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
            train_x, train_y = inputs[:n_train], targets[:n_train]
            # The shuffle order gets its own seeded generator so it does not depend on how many
            # random numbers weight initialisation happened to draw.
            generator = torch.Generator().manual_seed(seed)
            self.batch_size_ = rows_per_step(self.batch_size, n_train)
            val_x, val_y = inputs[n_train:], targets[n_train:]

            best_loss, best_state, best_epoch, stale = np.inf, None, 0, 0
            self.loss_curve_: list[float] = []
            self.validation_loss_curve_: list[float] = []
            for epoch in range(1, epoch_limit(self.max_epochs, self.max_samples, n_train) + 1):
                # Between epochs a fit can stop cleanly when the command is asked to stop.
                interrupt.check()
                module.train()
                total = 0.0
                for rows in shuffled_batches(n_train, self.batch_size_, generator):
                    batch_x, batch_y = train_x[rows], train_y[rows]
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
