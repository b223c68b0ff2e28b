"""The pure steps of a training cycle: prepare the split, train one candidate, choose, decide."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models import metrics as metric_registry
from models.promotion import Decision, decide
from pipelines.config.usecase import Candidate, UseCase
from pipelines.nodes.estimators import (
    baseline_factory,
    candidate_factory,
    class_ratio,
    search_space,
    split_plan,
    target_values,
)


@dataclass(frozen=True)
class Prepared:
    frame: pd.DataFrame
    """The rows with integer columns narrowed (``compact``): what every fit and score reads."""
    y: np.ndarray
    plan: Any
    ratio: float | None
    read_dtypes: dict[str, Any] = field(default_factory=dict)
    """Each column's type as read from the dataset, before narrowing."""

    @property
    def holdout_y(self) -> np.ndarray:
        return self.y[self.plan.final.test]

    def as_read(self, rows: pd.DataFrame) -> pd.DataFrame:
        """``rows`` of ``frame`` in the types they were read with, as `mlops predict` reads them."""
        return rows.astype({name: kind for name, kind in self.read_dtypes.items() if name in rows.columns})


def compact(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every integer column in the smallest integer type that holds its values.

    Codes and counts then take one or two bytes a value instead of eight, in the frame and in every
    fold's copy of its rows: on a million rows, gigabytes less while candidates train side by side.
    Feature steps turn them into floats either way, so no model sees a difference.
    """
    narrowed = {name: pd.to_numeric(frame[name], downcast="integer")
                for name in frame.columns if pd.api.types.is_integer_dtype(frame[name].dtype)}
    return frame.assign(**narrowed) if narrowed else frame


@dataclass
class CandidateOutcome:
    name: str
    candidate: Candidate
    evaluation: Any = None
    error: str | None = None
    started: float = 0.0
    run_id: str | None = None
    model_uri: str | None = None
    worker: str = ""
    """The process that trained it: host and pid."""
    tuning: Any = None
    """The hyperparameter search (``models.tuning.TuningResult``) when there was one."""


def prepare(use_case: UseCase, frame: pd.DataFrame) -> Prepared:
    y = target_values(use_case, frame)
    plan = split_plan(use_case, frame, y)
    return Prepared(compact(frame), y, plan, class_ratio(use_case, y[plan.final.train]),
                    read_dtypes=frame.dtypes.to_dict())


def train(use_case: UseCase, name: str, data: Prepared, progress: Callable[[str], None]) -> CandidateOutcome:
    """Tune (within the use case's budget), cross-validate and fit one candidate.

    A failure is recorded, not raised, so the others go on.
    """
    candidate = use_case.candidates[name]
    outcome = CandidateOutcome(name, candidate, started=time.time())
    try:
        outcome.evaluation, outcome.tuning = _tuned_evaluation(use_case, name, candidate, data, progress)
    except Exception as exc:  # noqa: BLE001 - one broken candidate must not sink the cycle
        outcome.error = f"{type(exc).__name__}: {exc}"
    return outcome


def _tuned_evaluation(use_case: UseCase, name: str, candidate: Candidate, data: Prepared,
                      progress: Callable[[str], None]) -> tuple[Any, Any]:
    """The candidate's evaluation at its best hyperparameters, and the search that found them.

    The search sees only the cross-validation folds; the winning trial's fold results are the
    candidate's cross-validation, so only the final fit remains. The holdout guides nothing.
    """
    from models.evaluation import evaluate

    metrics = list(use_case.metrics)
    space = search_space(use_case, candidate)
    result = None
    if space:
        from models.tuning import tune

        assert use_case.tuning is not None  # search_space is empty without it
        result = tune(name, lambda tuned: candidate_factory(use_case, candidate, data.ratio, tuned)(), space,
                      data.frame, data.y, data.plan.folds, use_case.task, metrics, use_case.primary_metric,
                      use_case.tuning.budget_s, use_case.tuning.trials, seed=use_case.random_state,
                      progress=progress)
        progress(f"{name}: tuned, {result.summary()}")
    factory = candidate_factory(use_case, candidate, data.ratio, result.best_params if result else None)
    evaluation = evaluate(name, factory, data.frame, data.y, data.plan, use_case.task, metrics,
                          progress=progress, cv=result.best_folds if result else None)
    return evaluation, result


def evaluate_baselines(use_case: UseCase, data: Prepared) -> dict[str, Any]:
    from models.evaluation import evaluate

    return {name: evaluate(name, baseline_factory(use_case, name), data.frame, data.y, data.plan,
                           use_case.task, list(use_case.metrics))
            for name in use_case.baselines}


def evaluate_champion(use_case: UseCase, version: str, model: Any, data: Prepared) -> Any:
    from models.evaluation import evaluate_fitted

    return evaluate_fitted(f"champion v{version}", model, data.frame, data.y, data.plan, use_case.task,
                           list(use_case.metrics))


def primary_metric(use_case: UseCase) -> metric_registry.Metric:
    return metric_registry.get_metric(use_case.task, use_case.primary_metric)


def choose_best(use_case: UseCase, trained: list[CandidateOutcome]) -> CandidateOutcome:
    """The candidate with the best cross-validated primary metric: the holdout stays the referee."""
    metric = primary_metric(use_case)

    def rank(outcome: CandidateOutcome) -> float:
        value = outcome.evaluation.cv_metrics.get(use_case.primary_metric)
        if value is None or math.isnan(value):
            return -math.inf
        return value if metric.greater_is_better else -value

    return max(trained, key=rank)


@dataclass(frozen=True)
class ChampionScore:
    """The current champion on this cycle's holdout; ``error`` when it could not be scored."""

    version: str | None = None
    evaluation: Any = None
    error: str | None = None


def promotion(use_case: UseCase, best: CandidateOutcome, baselines: dict[str, Any],
              champion: ChampionScore, data: Prepared) -> Decision:
    """The gate: the challenger against the best baseline and the champion, with intervals of its gains."""
    from pipelines.nodes.uncertainty import holdout_dates, weigh

    primary = use_case.primary_metric
    metric = primary_metric(use_case)
    baseline_values = {n: e.holdout_metrics.get(primary, math.nan) for n, e in baselines.items()}
    champion_value = champion.evaluation.holdout_metrics.get(primary) if champion.evaluation else None
    challenger = best.evaluation.holdout_metrics.get(primary, math.nan)
    dates = holdout_dates(use_case, data.frame, data.plan.final.test)
    evidence = weigh(use_case, metric, data.holdout_y, dates, best.evaluation.holdout.scores,
                     {n: (baseline_values[n], e.holdout.scores) for n, e in baselines.items()},
                     champion.evaluation.holdout.scores if champion.evaluation else None)
    return decide(metric, use_case.promotion_margin, challenger, champion_value, champion.version,
                  baseline_values, champion.error, evidence)
