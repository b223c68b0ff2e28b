"""From a use case to what the evaluation harness needs: targets, splits, estimators that score raw rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from pipelines.config.errors import UseCaseError
from pipelines.config.references import resolve_reference
from pipelines.config.usecase import GENERIC_FEATURES, WALK_FORWARD, Candidate, UseCase


def target_values(use_case: UseCase, frame: pd.DataFrame) -> np.ndarray:
    """The target per row as floats; NaN where a row has none (a ticker's last day)."""
    if not use_case.target_is_column:
        values = resolve_reference(use_case.target)(frame)
    elif use_case.target in frame.columns:
        values = frame[use_case.target]
    else:
        raise UseCaseError(f"{use_case.file_name}: target: column '{use_case.target}' is not in "
                           f"{use_case.dataset}{_nearest(use_case.target, frame.columns)}")
    values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    if use_case.task == "classification":
        observed = set(np.unique(values[~np.isnan(values)]))
        if not observed <= {0.0, 1.0} or len(observed) < 2:
            raise UseCaseError(f"{use_case.file_name}: target: a classification target must take the "
                               f"values 0 and 1, got {sorted(observed)[:5]}")
    return values


def _nearest(name: str, columns: pd.Index) -> str:
    from difflib import get_close_matches

    near = get_close_matches(name, [str(c) for c in columns], n=1)
    if near:
        return f" (did you mean '{near[0]}'?)"
    shown = ", ".join(map(str, columns[:8])) + (", ..." if len(columns) > 8 else "")
    return f" (its columns: {shown})"


def check_data(use_case: UseCase, frame: pd.DataFrame) -> None:
    """What a definition asks of its data, checked before validation and training.

    The target must exist and take usable values, and the split must find enough rows (of each
    class) for its folds and holdout. A target function that fails on data that validation would
    reject anyway is left for validation to report.
    """
    try:
        y = target_values(use_case, frame)
    except UseCaseError:
        raise
    except Exception:  # noqa: BLE001 - bad rows are validation's to report, with examples
        return
    split_plan(use_case, frame, y)


def feature_columns_excluded(use_case: UseCase) -> list[str]:
    """Columns a generic feature builder must never turn into inputs: keys and a target column."""
    columns = list(use_case.key)
    if use_case.target_is_column:
        columns.append(use_case.target)
    return columns


def build_features(use_case: UseCase, options: dict[str, Any] | None = None) -> Any:
    builder = resolve_reference(use_case.features)
    options = dict(options or {})
    if use_case.features == GENERIC_FEATURES:
        options.setdefault("exclude", feature_columns_excluded(use_case))
    return builder(**options)


def class_ratio(use_case: UseCase, y: np.ndarray) -> float | None:
    """Negatives per positive in ``y``, which balances classes for models without class_weight."""
    if use_case.task != "classification":
        return None
    positives = float(np.nansum(y == 1))
    negatives = float(np.nansum(y == 0))
    return negatives / positives if positives else None


def candidate_factory(use_case: UseCase, candidate: Candidate, ratio: float | None,
                      tuned: dict[str, Any] | None = None) -> Callable[[], Any]:
    """A function returning a fresh features→model pipeline, so the logged model scores raw rows.

    ``tuned`` hyperparameters apply under the candidate's declared ``params``, which stay fixed.
    """
    from sklearn.pipeline import Pipeline

    from models.families import build_candidate

    params = {**(tuned or {}), **candidate.params}

    def make() -> Pipeline:
        return Pipeline([
            ("features", build_features(use_case, candidate.features)),
            ("model", build_candidate(candidate.model, use_case.task, params,
                                      random_state=use_case.random_state, class_ratio=ratio)),
        ])

    return make


def search_space(use_case: UseCase, candidate: Candidate) -> dict[str, Any]:
    """What tuning may change for ``candidate``: its family's space less its declared ``params``.

    Empty when the use case has no ``tuning``, the candidate opts out, or its family declares none.
    """
    from models.families import FAMILIES

    family = FAMILIES.get(candidate.model)
    if use_case.tuning is None or not candidate.tune or family is None or family.search_space is None:
        return {}
    space = family.search_space(use_case.task)
    return {name: values for name, values in space.items() if name not in candidate.params}


def baseline_factory(use_case: UseCase, name: str) -> Callable[[], Any]:
    from sklearn.pipeline import Pipeline

    from models.baselines import NEEDS_FEATURES, build_baseline

    def make() -> Pipeline:
        steps = [("features", build_features(use_case))] if name in NEEDS_FEATURES else []
        return Pipeline([*steps, ("model", build_baseline(name, use_case.task))])

    return make


def split_plan(use_case: UseCase, frame: pd.DataFrame, y: np.ndarray) -> Any:
    from models.splits import stratified, walk_forward

    split = use_case.split
    labelled = ~np.isnan(y)
    try:
        if split.strategy == WALK_FORWARD:
            assert use_case.order is not None  # the definition's checks guarantee it
            return walk_forward(frame[use_case.order.column], labelled, n_splits=split.folds,
                                embargo=split.embargo, holdout=split.holdout, min_train=split.min_train)
        keys = frame[list(use_case.key)] if use_case.key else frame
        return stratified(np.nan_to_num(y, nan=-1), keys, n_splits=split.folds, holdout=split.holdout,
                          random_state=use_case.random_state, salt=split.salt)
    except ValueError as exc:
        raise UseCaseError(f"{use_case.file_name}: split: {exc}") from None
