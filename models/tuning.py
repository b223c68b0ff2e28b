"""Hyperparameter search for one candidate within a wall-clock budget, on its cross-validation folds.

The first trial is always the family's defaults, scored on every fold, so a search never ends
worse on the folds than no search and always has a result. Optuna's TPE sampler proposes the
trials after it; a trial whose running mean over the folds so far trails the median of earlier
trials at the same fold is pruned, which spends the budget on promising settings.

Only the folds it is given are ever fitted: the holdout stays untouched for the final comparison,
and the winner's fold results become the candidate's cross-validation record without a refit.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState
from sklearn.base import BaseEstimator

from models import metrics as metric_registry
from models.evaluation import FoldResult, fit_and_score
from models.search_space import Choice, Dimension, FloatRange, IntRange, SearchSpace
from models.splits import Fold

DEFAULTS, COMPLETE, PRUNED, FAILED, STOPPED = "defaults", "complete", "pruned", "failed", "stopped"
BY_TRIALS, BY_BUDGET = "trials", "budget"
# Random proposals before TPE models the results: a budget usually allows 10-30 trials, and
# TPE's usual 10 would leave it little to do.
RANDOM_TRIALS = 5
# Complete trials before pruning starts: a median of fewer says little.
TRIALS_BEFORE_PRUNING = 3


@dataclass
class TrialRecord:
    """One row of the trials table."""

    number: int
    params: dict[str, Any]
    fold_values: list[float]
    """The primary metric on each fold scored, in fold order."""
    value: float
    """Mean of ``fold_values`` ignoring NaN, as ``Evaluation.cv_metrics`` computes it."""
    state: str
    seconds: float
    error: str = ""


@dataclass
class TuningResult:
    best_params: dict[str, Any]
    """Overrides of the winning trial; ``{}`` when the family's defaults won."""
    best_folds: list[FoldResult]
    """The winning trial's fold results, to pass to ``evaluate(..., cv=...)`` instead of a refit."""
    trials: list[TrialRecord]
    seconds: float
    stopped_by: str
    """``"trials"``: ``max_trials`` were run; ``"budget"``: the time ran out first."""
    primary: str = ""
    best_number: int = 0

    @property
    def best_value(self) -> float:
        return next(t.value for t in self.trials if t.number == self.best_number)

    @property
    def defaults_value(self) -> float:
        return self.trials[0].value

    def table(self) -> pd.DataFrame:
        """One row per trial: number, state, value, seconds, the value on each fold, each parameter."""
        return pd.DataFrame([_row(trial) for trial in self.trials])

    def summary(self) -> str:
        """E.g. ``14 trials (5 pruned) in 29.8s; best cv roc_auc 0.7412 (defaults 0.7301)``."""
        counts = [f"{sum(t.state == s for t in self.trials)} {s}" for s in (PRUNED, FAILED, STOPPED)]
        shown = [count for count in counts if not count.startswith("0 ")]
        detail = f" ({', '.join(shown)})" if shown else ""
        return (f"{len(self.trials)} trials{detail} in {self.seconds:.1f}s, stopped by {self.stopped_by}; "
                f"best cv {self.primary} {self.best_value:.4f} (defaults {self.defaults_value:.4f})")


def _row(trial: TrialRecord) -> dict[str, Any]:
    folds = {f"fold_{number}": value for number, value in enumerate(trial.fold_values, start=1)}
    params = {f"param.{name}": value for name, value in trial.params.items()}
    return {"number": trial.number, "state": trial.state, "value": trial.value,
            "seconds": trial.seconds, **folds, **params, "error": trial.error}


def suggest(space: SearchSpace, trial: optuna.Trial) -> dict[str, Any]:
    """The overrides ``trial`` proposes, with each ``Choice`` resolved to its option."""
    return {name: _suggest_one(trial, name, dimension) for name, dimension in space.items()}


def _suggest_one(trial: optuna.Trial, name: str, dimension: Dimension) -> Any:
    if isinstance(dimension, FloatRange):
        return trial.suggest_float(name, dimension.low, dimension.high, log=dimension.log)
    if isinstance(dimension, IntRange):
        return trial.suggest_int(name, dimension.low, dimension.high, log=dimension.log)
    if isinstance(dimension, Choice):
        # Optuna stores only scalar choices; an index carries any option, tuples of layer sizes too.
        return dimension.options[trial.suggest_categorical(name, list(range(len(dimension.options))))]
    raise TypeError(f"{name}: not a search dimension: {dimension!r}")


@dataclass
class _Search:
    """What every trial of one search shares."""

    name: str
    make_estimator: Callable[[dict[str, Any]], BaseEstimator]
    frame: pd.DataFrame
    y: np.ndarray
    folds: list[Fold]
    task: str
    metric_names: list[str]
    metric: metric_registry.Metric
    deadline: float
    progress: Callable[[str], None] | None

    def out_of_time(self) -> bool:
        return time.perf_counter() >= self.deadline

    def say(self, message: str) -> None:
        if self.progress:
            self.progress(f"{self.name}: {message}")


def tune(name: str, make_estimator: Callable[[dict[str, Any]], BaseEstimator], space: SearchSpace,
         frame: pd.DataFrame, y: np.ndarray, folds: list[Fold], task: str, metric_names: list[str],
         primary: str, budget_s: float, max_trials: int, seed: int = 0,
         progress: Callable[[str], None] | None = None) -> TuningResult:
    """Search ``space`` for the overrides with the best mean ``primary`` metric over ``folds``.

    ``make_estimator(overrides)`` returns a fresh, unfitted estimator. The search stops after
    ``max_trials`` trials (the defaults included) or when ``budget_s`` seconds are spent: no trial
    starts with less time left than a complete trial has taken on average, and one the budget
    runs out in stops after its current fold. If the defaults themselves fail to fit, that error
    propagates, just as a plain evaluation's would; later failures are recorded and the search
    goes on. A stop request (``models.interrupt``) always propagates.
    """
    if max_trials < 1:
        raise ValueError(f"max_trials must be at least 1 (the defaults), got {max_trials}")
    if primary not in metric_names:
        raise ValueError(f"the primary metric {primary!r} is not among {metric_names}")
    started = time.perf_counter()
    search = _Search(name, make_estimator, frame, np.asarray(y), folds, task, list(metric_names),
                     metric_registry.get_metric(task, primary), started + budget_s, progress)
    study = _study(search.metric, seed)
    defaults, defaults_folds = _run_defaults(search)
    records, best, best_folds = [defaults], defaults, defaults_folds
    stopped_by = BY_TRIALS
    while len(records) < max_trials and space:
        if _no_time_for_another(search, records):
            stopped_by = BY_BUDGET
            break
        record, fold_results = _run_trial(search, study, space, number=len(records))
        records.append(record)
        if record.state == COMPLETE and search.metric.better(record.value, best.value):
            best, best_folds = record, fold_results
        search.say(_trial_message(record, best, primary))
        if record.state == STOPPED:
            stopped_by = BY_BUDGET
            break
    return TuningResult(dict(best.params), best_folds, records, time.perf_counter() - started, stopped_by,
                        primary, best.number)


def _study(metric: metric_registry.Metric, seed: int) -> optuna.Study:
    _quiet_optuna()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.create_study(
            direction="maximize" if metric.greater_is_better else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=RANDOM_TRIALS),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=TRIALS_BEFORE_PRUNING, n_warmup_steps=0))


def _quiet_optuna() -> None:
    # Optuna logs every study and trial at INFO; the caller's progress messages say what matters.
    # Raised only, never lowered, so a caller who asked for less output keeps it.
    if optuna.logging.get_verbosity() < optuna.logging.WARNING:
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def _run_defaults(search: _Search) -> tuple[TrialRecord, list[FoldResult]]:
    started = time.perf_counter()
    factory = partial(search.make_estimator, {})
    results = [fit_and_score(factory, search.frame, search.y, fold, search.task, search.metric_names)[1]
               for fold in search.folds]
    values = [result.metrics[search.metric.name] for result in results]
    value = _mean(values)
    # Not told to the study: a trial without parameters would empty the joint search space that
    # multivariate TPE models, leaving it to sample each parameter on its own.
    record = TrialRecord(0, {}, values, value, DEFAULTS, time.perf_counter() - started,
                         "" if np.isfinite(value) else f"{search.metric.name} is undefined on every fold")
    search.say(f"trial 0 (defaults) cv {search.metric.name} {value:.4f}")
    return record, results


def _run_trial(search: _Search, study: optuna.Study, space: SearchSpace,
               number: int) -> tuple[TrialRecord, list[FoldResult]]:
    started = time.perf_counter()
    trial = study.ask()
    params = suggest(space, trial)
    results, state, error = _score_folds(search, trial, partial(search.make_estimator, params))
    values = [result.metrics[search.metric.name] for result in results]
    value = _mean(values)
    if state == COMPLETE and not np.isfinite(value):
        state, error = FAILED, f"{search.metric.name} is undefined on every fold"
    _tell(study, trial, state, value)
    return TrialRecord(number, params, values, value, state, time.perf_counter() - started, error), results


def _score_folds(search: _Search, trial: optuna.Trial,
                 factory: Callable[[], BaseEstimator]) -> tuple[list[FoldResult], str, str]:
    """The fold results a trial got to, how it ended, and the error if a fit failed."""
    results: list[FoldResult] = []
    for step, fold in enumerate(search.folds):
        try:
            _, result = fit_and_score(factory, search.frame, search.y, fold, search.task, search.metric_names)
        except Exception as exc:  # noqa: BLE001 - a bad setting is a result of the search, not its end
            return results, FAILED, f"{type(exc).__name__}: {exc}"
        results.append(result)
        running = _mean([r.metrics[search.metric.name] for r in results])
        if np.isfinite(running):
            trial.report(running, step)
            if trial.should_prune():
                return results, PRUNED, ""
        if search.out_of_time() and step < len(search.folds) - 1:
            return results, STOPPED, ""
    return results, COMPLETE, ""


def _tell(study: optuna.Study, trial: optuna.Trial, state: str, value: float) -> None:
    if state == COMPLETE:
        study.tell(trial, value)
    elif state == PRUNED:
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


def _no_time_for_another(search: _Search, records: list[TrialRecord]) -> bool:
    finished = [record.seconds for record in records if record.state in (DEFAULTS, COMPLETE)]
    expected = float(np.mean(finished)) if finished else 0.0
    return search.deadline - time.perf_counter() < expected


def _mean(values: list[float]) -> float:
    # Folds where the metric is undefined are left out, as in a candidate's cross-validation
    # record, so the winner's value is the cv value its evaluation will show.
    finite = [value for value in values if not np.isnan(value)]
    return float(np.mean(finite)) if finite else float("nan")


def _trial_message(record: TrialRecord, best: TrialRecord, primary: str) -> str:
    if record.state == FAILED:
        return f"trial {record.number} failed: {record.error}"
    folds = f"after {len(record.fold_values)} fold(s) " if record.state in (PRUNED, STOPPED) else ""
    return (f"trial {record.number} {record.state} {folds}cv {primary} {record.value:.4f} "
            f"(best {best.value:.4f})")
