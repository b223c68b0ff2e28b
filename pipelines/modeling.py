"""The modelling half of a use case definition: target, task, features, split, metrics, candidates.

The definition names code by import path (``package.module:attribute``), so a use case can use any
feature builder or target function in ``features/`` without any flow knowing about it. Everything
is checked when the definition is read, so a typo fails in a second with the field's name rather
than halfway through training.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import UseCaseError
from pipelines.usecase import UseCase

TASKS = ("classification", "regression")
SPLIT_STRATEGIES = ("walk_forward", "stratified")
DEFAULT_METRICS = {
    "classification": ["roc_auc", "pr_auc", "log_loss", "brier"],
    "regression": ["rmse", "mae", "directional_accuracy"],
}
DEFAULT_PRIMARY = {"classification": "roc_auc", "regression": "rmse"}
DEFAULT_BASELINES = {"walk_forward": ["always_up", "persistence"], "stratified": ["base_rate"]}
GENERIC_FEATURES = "features.tabular:tabular_features"


@dataclass(frozen=True)
class CandidateSpec:
    name: str
    """The candidate's name in runs and the leaderboard (the catalogue family unless ``model`` says)."""
    model: str
    """Which entry of the catalogue in ``models.candidates`` builds it."""
    params: dict[str, Any] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitSpec:
    strategy: str
    folds: int
    holdout: float
    embargo: int = 0
    min_train: float = 0.5


@dataclass(frozen=True)
class ModelingSpec:
    use_case: UseCase
    task: str
    target: str
    features: str
    split: SplitSpec
    metrics: list[str]
    primary_metric: str
    promotion_margin: float
    baselines: list[str]
    candidates: list[CandidateSpec]
    registered_model: str
    experiment: str
    horizon: int
    random_state: int
    non_inputs: list[str] = field(default_factory=list)
    """Columns never shown to a model, its input example or signature: identifiers and the label."""

    def with_candidates(self, names: list[str]) -> ModelingSpec:
        """The same definition restricted to ``names`` (``mlops run --candidates``)."""
        known = {c.name: c for c in self.candidates}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UseCaseError(f"{self.use_case.name} has no candidate {', '.join(unknown)} "
                               f"(defined: {', '.join(known)})")
        return _replace(self, candidates=[known[n] for n in names])


def _replace(spec: ModelingSpec, **changes: Any) -> ModelingSpec:
    from dataclasses import replace

    return replace(spec, **changes)


def resolve_reference(reference: str, what: str) -> Callable[..., Any]:
    """Import ``package.module:attribute``."""
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise UseCaseError(f"{what} {reference!r} must look like package.module:name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UseCaseError(f"{what} {reference!r}: cannot import {module_name} ({exc})") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise UseCaseError(f"{what} {reference!r}: {module_name} has no {attribute}") from None


def _per_task(value: Any, task: str) -> Any:
    """Fields may be written once, or once per task so that switching ``task`` is a one-line edit."""
    if isinstance(value, dict) and set(value) <= set(TASKS) and value:
        return value.get(task)
    return value


def _candidates(raw: Any, use_case: str) -> list[CandidateSpec]:
    from models.candidates import CANDIDATE_FAMILIES

    if isinstance(raw, list):
        raw = {name: {} for name in raw}
    if not isinstance(raw, dict) or not raw:
        raise UseCaseError(f"use case {use_case}: 'candidates' must list at least one candidate")
    specs = []
    for name, options in raw.items():
        options = options or {}
        unknown = set(options) - {"model", "params", "features"}
        if unknown:
            raise UseCaseError(f"use case {use_case}: candidate {name} has unknown fields "
                               f"{', '.join(sorted(unknown))} (allowed: model, params, features)")
        model = options.get("model", name)
        if model not in CANDIDATE_FAMILIES:
            raise UseCaseError(f"use case {use_case}: candidate {name} uses unknown model {model!r} "
                               f"(available: {', '.join(CANDIDATE_FAMILIES)})")
        specs.append(CandidateSpec(str(name), model, dict(options.get("params") or {}),
                                   dict(options.get("features") or {})))
    return specs


def _split(raw: dict[str, Any], use_case: UseCase, horizon: int) -> SplitSpec:
    strategy = raw.get("strategy", "walk_forward" if use_case.order else "stratified")
    if strategy not in SPLIT_STRATEGIES:
        raise UseCaseError(f"use case {use_case.name}: split strategy {strategy!r} is not one of "
                           f"{', '.join(SPLIT_STRATEGIES)}")
    embargo = int(raw.get("embargo", horizon))
    if strategy == "walk_forward" and embargo < horizon:
        raise UseCaseError(f"use case {use_case.name}: an embargo of {embargo} is shorter than the "
                           f"prediction horizon ({horizon}); training labels would overlap the test days")
    return SplitSpec(strategy=strategy, folds=int(raw.get("folds", 4 if strategy == "walk_forward" else 5)),
                     holdout=float(raw.get("holdout", 0.15 if strategy == "walk_forward" else 0.2)),
                     embargo=embargo, min_train=float(raw.get("min_train", 0.5)))


def modeling_spec(use_case: UseCase) -> ModelingSpec:
    """Read and check the modelling fields of a use case definition."""
    from models import metrics as metric_registry
    from models.baselines import BASELINES

    raw = use_case.settings
    name = use_case.name
    task = raw.get("task", "classification")
    if task not in TASKS:
        raise UseCaseError(f"use case {name}: task {task!r} is not one of {', '.join(TASKS)}")
    target = _per_task(raw.get("target"), task)
    if not target:
        raise UseCaseError(f"use case {name}: no target for task {task}")
    horizon = int(raw.get("horizon", 1))
    split = _split(raw.get("split") or {}, use_case, horizon)
    metrics = list(_per_task(raw.get("metrics"), task) or DEFAULT_METRICS[task])
    primary = _per_task(raw.get("primary_metric"), task) or DEFAULT_PRIMARY[task]
    for metric in [*metrics, primary]:
        try:
            metric_registry.get_metric(task, metric)
        except ValueError as exc:
            raise UseCaseError(f"use case {name}: {exc}") from None
    if primary not in metrics:
        metrics.insert(0, primary)
    baselines = list(raw.get("baselines") or DEFAULT_BASELINES[split.strategy])
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise UseCaseError(f"use case {name}: unknown baseline {', '.join(unknown)} "
                           f"(available: {', '.join(BASELINES)})")
    spec = ModelingSpec(
        use_case=use_case,
        task=task,
        target=str(target),
        features=str(raw.get("features", GENERIC_FEATURES)),
        split=split,
        metrics=metrics,
        primary_metric=primary,
        promotion_margin=float(raw.get("promotion_margin", 0.0)),
        baselines=baselines,
        candidates=_candidates(raw.get("candidates"), name),
        registered_model=str(raw.get("registered_model", name)),
        experiment=str(raw.get("experiment", name)),
        horizon=horizon,
        random_state=int(raw.get("random_state", 0)),
        non_inputs=list(raw.get("non_inputs") or ([] if ":" in str(target) else [str(target)])),
    )
    resolve_reference(spec.features, f"use case {name}: features")
    if ":" in spec.target:
        resolve_reference(spec.target, f"use case {name}: target")
    return spec


# --- assembling estimators -----------------------------------------------------------------

def target_values(spec: ModelingSpec, frame: pd.DataFrame) -> np.ndarray:
    """The target per row as floats; NaN where a row has none (a ticker's last day)."""
    if ":" in spec.target:
        values = resolve_reference(spec.target, "target")(frame)
    elif spec.target in frame.columns:
        values = frame[spec.target]
    else:
        raise UseCaseError(f"use case {spec.use_case.name}: target column {spec.target!r} is not in the data")
    values = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    if spec.task == "classification":
        observed = set(np.unique(values[~np.isnan(values)]))
        if not observed <= {0.0, 1.0} or len(observed) < 2:
            raise UseCaseError(f"use case {spec.use_case.name}: a classification target must take the "
                               f"values 0 and 1, got {sorted(observed)[:5]}")
    return values


def feature_columns_excluded(spec: ModelingSpec) -> list[str]:
    """Columns a generic feature builder must never turn into inputs: keys and a target column."""
    columns = list(spec.use_case.key)
    if ":" not in spec.target:
        columns.append(spec.target)
    return columns


def build_features(spec: ModelingSpec, options: dict[str, Any] | None = None):
    builder = resolve_reference(spec.features, "features")
    options = dict(options or {})
    if spec.features == GENERIC_FEATURES:
        options.setdefault("exclude", feature_columns_excluded(spec))
    return builder(**options)


def class_ratio(spec: ModelingSpec, y: np.ndarray) -> float | None:
    """Negatives per positive in ``y``, which balances classes for models without class_weight."""
    if spec.task != "classification":
        return None
    positives = float(np.nansum(y == 1))
    negatives = float(np.nansum(y == 0))
    return negatives / positives if positives else None


def candidate_factory(spec: ModelingSpec, candidate: CandidateSpec, ratio: float | None):
    """A function returning a fresh features→model pipeline, so the logged model scores raw rows."""
    from sklearn.pipeline import Pipeline

    from models.candidates import build_candidate

    def make():
        return Pipeline([
            ("features", build_features(spec, candidate.features)),
            ("model", build_candidate(candidate.model, spec.task, candidate.params,
                                      random_state=spec.random_state, class_ratio=ratio)),
        ])

    return make


def baseline_factory(spec: ModelingSpec, name: str):
    from sklearn.pipeline import Pipeline

    from models.baselines import NEEDS_FEATURES, build_baseline

    def make():
        steps = [("features", build_features(spec))] if name in NEEDS_FEATURES else []
        return Pipeline([*steps, ("model", build_baseline(name, spec.task))])

    return make


def split_plan(spec: ModelingSpec, frame: pd.DataFrame, y: np.ndarray):
    from models.splits import stratified, walk_forward

    labelled = ~np.isnan(y)
    try:
        if spec.split.strategy == "walk_forward":
            order = spec.use_case.order
            if order is None:
                raise UseCaseError(f"use case {spec.use_case.name}: walk-forward splits need an 'order' "
                                   "column (the date) in the definition")
            return walk_forward(frame[order.column], labelled, n_splits=spec.split.folds,
                                embargo=spec.split.embargo, holdout=spec.split.holdout,
                                min_train=spec.split.min_train)
        keys = frame[list(spec.use_case.key)] if spec.use_case.key else frame
        return stratified(np.nan_to_num(y, nan=-1), keys, n_splits=spec.split.folds,
                          holdout=spec.split.holdout, random_state=spec.random_state)
    except ValueError as exc:
        raise UseCaseError(f"use case {spec.use_case.name}: {exc}") from None
