"""Features → train → evaluate → register → promote → report, for one use case's validated data.

Candidates train side by side through Prefect's task runner; each becomes a nested MLflow run of
the cycle's parent run. The champion alias moves last, so a failure anywhere leaves it in place.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from pipelines import concurrency, leaderboard, registry, tracking
from pipelines.errors import MlopsError
from pipelines.modeling import (
    CandidateSpec,
    ModelingSpec,
    baseline_factory,
    candidate_factory,
    class_ratio,
    split_plan,
    target_values,
)
from pipelines.project import Project


class TrainingError(MlopsError):
    """No candidate could be trained, or the cycle could not be recorded."""


@dataclass(frozen=True)
class Prepared:
    frame: pd.DataFrame
    y: np.ndarray
    plan: Any
    ratio: float | None


@dataclass
class CandidateOutcome:
    spec: CandidateSpec
    evaluation: Any = None
    error: str | None = None
    started: float = 0.0
    run_id: str | None = None
    model_uri: str | None = None


@dataclass
class TrainingOutcome:
    use_case: str
    experiment: str
    parent_run_id: str
    registered_model: str
    version: str | None
    decision: registry.Decision | None
    champion: str | None
    leaderboard: str
    failed: list[str] = field(default_factory=list)


def _log(message: str) -> None:
    get_run_logger().info(message)


@task(name="prepare training data", cache_policy=NO_CACHE)
def prepare(spec: ModelingSpec, frame: pd.DataFrame) -> Prepared:
    y = target_values(spec, frame)
    plan = split_plan(spec, frame, y)
    _log(f"{spec.use_case.name}: {plan.description}; {len(plan.final.train)} training rows, "
         f"{len(plan.final.test)} holdout rows")
    return Prepared(frame, y, plan, class_ratio(spec, y[plan.final.train]))


@task(name="train candidate", task_run_name="train {candidate.name}", cache_policy=NO_CACHE)
def train_candidate(spec: ModelingSpec, candidate: CandidateSpec, data: Prepared) -> CandidateOutcome:
    """Cross-validate and fit one candidate; a failure is recorded, not raised, so the others go on."""
    from models.evaluation import evaluate

    outcome = CandidateOutcome(candidate, started=time.time())
    logger = get_run_logger()
    try:
        # OpenMP thread counts are per calling thread, so each training thread sets its own.
        with threadpool_limits(limits=concurrency.thread_limits()):
            outcome.evaluation = evaluate(candidate.name, candidate_factory(spec, candidate, data.ratio),
                                          data.frame, data.y, data.plan, spec.task, spec.metrics,
                                          progress=logger.info)
    except Exception as exc:  # noqa: BLE001 - one broken candidate must not sink the cycle
        outcome.error = f"{type(exc).__name__}: {exc}"
        logger.error(f"candidate {candidate.name} failed: {outcome.error}")
    return outcome


@task(name="evaluate baselines", cache_policy=NO_CACHE)
def evaluate_baselines(spec: ModelingSpec, data: Prepared) -> dict[str, Any]:
    from models.evaluation import evaluate

    return {name: evaluate(name, baseline_factory(spec, name), data.frame, data.y, data.plan, spec.task,
                           spec.metrics)
            for name in spec.baselines}


@task(name="score champion", cache_policy=NO_CACHE)
def score_champion(spec: ModelingSpec, project: Project, data: Prepared) -> tuple[Any, Any, str | None]:
    """The current champion on this cycle's holdout: (version, evaluation, error)."""
    import mlflow.sklearn

    from models.evaluation import evaluate_fitted

    client = tracking.client(project)
    try:
        champion = registry.version_by_alias(client, spec.registered_model, registry.CHAMPION)
    except registry.RegistryError:
        return None, None, None
    if champion is None:
        return None, None, None
    try:
        model = mlflow.sklearn.load_model(f"models:/{spec.registered_model}@{registry.CHAMPION}")
        evaluation = evaluate_fitted(f"champion v{champion.version}", model, data.frame, data.y, data.plan,
                                     spec.task, spec.metrics)
    except Exception as exc:  # noqa: BLE001 - an unscorable champion blocks promotion, not the cycle
        get_run_logger().warning(f"champion v{champion.version} could not be scored: {exc}")
        return champion, None, f"{type(exc).__name__}: {exc}"
    return champion, evaluation, None


# --- logging ---------------------------------------------------------------------------------

def _dataset(spec: ModelingSpec, data: Prepared, data_version: str, project: Project):
    import mlflow.data

    train = data.frame.iloc[data.plan.final.train].drop(columns=_present(spec.non_inputs, data.frame))
    with _quiet_mlflow_hints():
        return mlflow.data.from_pandas(
            train, source=str(spec.use_case.dataset_path(project)),
            name=f"{spec.use_case.name}-train", digest=data_version[:36])


def _present(columns: list[str], frame: pd.DataFrame) -> list[str]:
    return [c for c in columns if c in frame.columns]


def _finite(values: dict[str, float], prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in values.items() if v is not None and not math.isnan(v)}


def _families(spec: ModelingSpec) -> dict[str, str]:
    from models.candidates import CANDIDATE_FAMILIES

    return {c.name: CANDIDATE_FAMILIES[c.model] for c in spec.candidates}


def _plots_for(spec: ModelingSpec, y_true: np.ndarray, scores: dict[str, np.ndarray]) -> dict[str, Any]:
    from pipelines import plots

    figures: dict[str, Any] = {}
    if spec.task == "classification":
        figures["plots/roc.png"] = plots.roc_figure(y_true, scores, f"{spec.use_case.name}: holdout ROC")
        if spec.split.strategy == "stratified":
            figures["plots/gains.png"] = plots.gains_figure(
                y_true, scores, f"{spec.use_case.name}: holdout gains and lift")
    return figures


def _input_example(spec: ModelingSpec, data: Prepared) -> pd.DataFrame:
    """A few training rows without identifiers or the label."""
    return data.frame.iloc[data.plan.final.train[:5]].drop(columns=_present(spec.non_inputs, data.frame))


@contextlib.contextmanager
def _quiet_mlflow_hints() -> Iterator[None]:
    with warnings.catch_warnings():
        # Integer columns cannot hold missing values, MLflow hints; validation rejects those first.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        # MLflow registers the local-file source twice and then warns that a path is ambiguous.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        yield


@task(name="log candidate", task_run_name="log {outcome.spec.name}", cache_policy=NO_CACHE)
def log_candidate(spec: ModelingSpec, project: Project, outcome: CandidateOutcome, data: Prepared,
                  experiment: str, parent_run_id: str, tags: dict[str, str], dataset: Any
                  ) -> CandidateOutcome:
    """A nested run with parameters, fold and holdout metrics, plots and the model itself."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from models.evaluation import positive_scores
    from pipelines import plots

    client = tracking.client(project)
    tracking.quiet_pickle_warning()
    candidate = outcome.spec
    family = _families(spec)[candidate.name]
    run = client.create_run(
        experiment, start_time=int(outcome.started * 1000), run_name=candidate.name,
        tags={**tags, "mlflow.parentRunId": parent_run_id, tracking.TAG_CANDIDATE: candidate.name,
              tracking.TAG_FAMILY: family, tracking.TAG_ROLE: "candidate"})
    outcome.run_id = run.info.run_id
    evaluation = outcome.evaluation
    with mlflow.start_run(run_id=outcome.run_id) as active, _quiet_mlflow_hints():
        params = {"candidate": candidate.name, "model": candidate.model, "features": spec.features,
                  **tracking.loggable_params(candidate.features, "features."),
                  **tracking.loggable_params(candidate.params, "params.")}
        if evaluation is not None:
            final = evaluation.model.steps[-1][1]
            params.update(tracking.loggable_params(final.get_params(deep=False), "model."))
        mlflow.log_params(params)
        mlflow.log_input(dataset, context="training")
        if outcome.error:
            mlflow.set_tag("error", outcome.error[:5000])
            client.set_terminated(active.info.run_id, status="FAILED")
            return outcome
        for step, fold in enumerate(evaluation.folds, start=1):
            mlflow.log_metrics(_finite(fold.metrics, "fold_"), step=step)
        mlflow.log_metrics({
            **_finite(evaluation.cv_metrics, "cv_"),
            **_finite({f"{k}_std": v for k, v in evaluation.cv_std.items()}, "cv_"),
            **_finite(evaluation.holdout_metrics, "holdout_"),
            "train_seconds": evaluation.fit_seconds,
            "final_fit_seconds": evaluation.holdout.fit_seconds,
        })

        holdout_rows = data.plan.final.test
        y_holdout = data.y[holdout_rows]
        scores = evaluation.holdout.scores
        for path, figure in _plots_for(spec, y_holdout, {candidate.name: scores}).items():
            mlflow.log_figure(figure, path)
        mlflow.log_figure(plots.predicted_vs_actual_figure(
            y_holdout, scores, spec.task, f"{candidate.name}: holdout predicted vs actual"),
            "plots/predicted_vs_actual.png")
        importances = plots.feature_importances(evaluation.model)
        if importances is not None:
            mlflow.log_figure(plots.feature_importance_figure(
                *importances, f"{candidate.name}: feature importance"), "plots/feature_importance.png")

        shown = data.frame.iloc[holdout_rows].drop(columns=_present(spec.non_inputs, data.frame))
        keys = [c for c in spec.use_case.key if c in shown.columns]
        predictions = shown[keys].assign(actual=y_holdout, predicted=scores)
        mlflow.log_text(predictions.to_csv(index=False), "holdout_predictions.csv")

        example = _input_example(spec, data)
        signature = infer_signature(example, positive_scores(evaluation.model, example, spec.task))
        info = mlflow.sklearn.log_model(
            evaluation.model, name="model", signature=signature, input_example=example,
            pip_requirements=tracking.pip_requirements({family}),
            # skops refuses the PyTorch and XGBoost estimators; the store is the project's own.
            serialization_format="cloudpickle",
            pyfunc_predict_fn="predict_proba" if spec.task == "classification" else "predict",
        )
        outcome.model_uri = info.model_uri
    return outcome


# --- the stage sequence ----------------------------------------------------------------------

def _candidate_entry(outcome: CandidateOutcome, primary: str) -> leaderboard.Entry:
    if outcome.evaluation is None:
        return leaderboard.Entry(outcome.spec.name, "candidate", note=f"failed: {outcome.error}"[:80])
    evaluation = outcome.evaluation
    return leaderboard.Entry(outcome.spec.name, "candidate", evaluation.holdout_metrics,
                             evaluation.cv_metrics.get(primary, math.nan),
                             evaluation.cv_std.get(primary, math.nan), evaluation.fit_seconds)


def train_and_register(spec: ModelingSpec, project: Project, frame: pd.DataFrame, data_version: str,
                       validation: str, trigger: str = "manual") -> TrainingOutcome:
    """Everything after validation and versioning; call inside a Prefect flow."""

    from models import metrics as metric_registry

    logger = get_run_logger()
    primary = metric_registry.get_metric(spec.task, spec.primary_metric)
    client = tracking.client(project)
    experiment = tracking.experiment_id(client, project, spec.experiment)
    tags = tracking.lineage_tags(spec.use_case.name, data_version, validation, tracking.git_state(project))
    parent = client.create_run(experiment, run_name=f"cycle {time.strftime('%Y-%m-%d %H:%M:%S')}",
                               tags={**tags, tracking.TAG_ROLE: "cycle", "trigger": trigger})
    parent_id = parent.info.run_id
    logger.info(f"MLflow run {parent_id} in experiment '{spec.experiment}' "
                f"({tracking.tracking_uri(project)})")
    try:
        data = prepare(spec, frame)
        # OpenBLAS's thread count is process-wide: set here, it holds for the training threads too.
        with threadpool_limits(limits=1, user_api="blas"):
            futures = [train_candidate.submit(spec, candidate, data) for candidate in spec.candidates]
            baselines = evaluate_baselines(spec, data)
            champion, champion_eval, champion_error = score_champion(spec, project, data)
            # One dataset object for every candidate: MLflow infers its schema once.
            dataset = _dataset(spec, data, data_version, project)
            outcomes = [log_candidate(spec, project, future.result(), data, experiment, parent_id, tags,
                                      dataset) for future in futures]
        trained = [o for o in outcomes if o.evaluation is not None]
        failed = [o.spec.name for o in outcomes if o.evaluation is None]
        if not trained:
            errors = "; ".join(f"{o.spec.name}: {o.error}" for o in outcomes)
            raise TrainingError(f"{spec.use_case.name}: every candidate failed ({errors})")

        best = max(trained, key=lambda o: _rank_value(o.evaluation.cv_metrics.get(spec.primary_metric),
                                                      primary.greater_is_better))
        best_value = best.evaluation.holdout_metrics.get(spec.primary_metric, math.nan)
        baseline_values = {n: e.holdout_metrics.get(spec.primary_metric, math.nan)
                           for n, e in baselines.items()}
        champion_value = (champion_eval.holdout_metrics.get(spec.primary_metric) if champion_eval else None)
        champion_version = str(champion.version) if champion else None
        decision = registry.decide(primary, spec.promotion_margin, best_value, champion_value,
                                   champion_version, baseline_values, champion_error)

        version = register_best(spec, project, best, tags, data_version, parent_id, data)
        for key, value in decision.tags().items():
            client.set_model_version_tag(spec.registered_model, str(version.version), key, value)
            client.set_tag(parent_id, key, value)
        if decision.promote:
            registry.set_champion(client, spec.registered_model, str(version.version), decision.reason,
                                  actor=f"mlops run (cycle {parent_id})")
        logger.info(f"{spec.registered_model} v{version.version} ({best.spec.name}): {decision.reason}")

        entries = [_candidate_entry(o, spec.primary_metric) for o in outcomes]
        for entry in entries:
            if entry.name == best.spec.name:
                entry.note = f"registered v{version.version}" + (", champion" if decision.promote
                                                                 else ", challenger")
        for name, evaluation in baselines.items():
            entries.append(leaderboard.Entry(name, "baseline", evaluation.holdout_metrics,
                                             evaluation.cv_metrics.get(spec.primary_metric, math.nan),
                                             evaluation.cv_std.get(spec.primary_metric, math.nan),
                                             evaluation.fit_seconds))
        if champion is not None:
            entries.append(leaderboard.Entry(
                f"champion v{champion.version}", "champion",
                champion_eval.holdout_metrics if champion_eval else {},
                note=("kept" if not decision.promote else "replaced") if champion_eval
                else f"not scored: {champion_error}"[:80]))
        text = report(spec, project, parent_id, entries, outcomes, baselines, champion_eval, data, decision)
        client.set_terminated(parent_id, status="FINISHED")
    except BaseException:
        client.set_terminated(parent_id, status="FAILED")
        raise
    current = registry.version_by_alias(client, spec.registered_model, registry.CHAMPION)
    return TrainingOutcome(spec.use_case.name, spec.experiment, parent_id, spec.registered_model,
                           str(version.version), decision, str(current.version) if current else None, text,
                           failed)


def _rank_value(value: float | None, greater_is_better: bool) -> float:
    if value is None or math.isnan(value):
        return -math.inf
    return value if greater_is_better else -value


@task(name="register best candidate", cache_policy=NO_CACHE)
def register_best(spec: ModelingSpec, project: Project, best: CandidateOutcome, tags: dict[str, str],
                  data_version: str, parent_id: str, data: Prepared):
    from models.candidates import CANDIDATE_FAMILIES

    client = tracking.client(project)
    evaluation = best.evaluation
    cv_value = evaluation.cv_metrics.get(spec.primary_metric, math.nan)
    holdout_value = evaluation.holdout_metrics.get(spec.primary_metric, math.nan)
    version_tags = {
        **tags,
        tracking.TAG_CANDIDATE: best.spec.name,
        tracking.TAG_FAMILY: CANDIDATE_FAMILIES[best.spec.model],
        "run_id": best.run_id or "",
        "parent_run_id": parent_id,
        "primary_metric": spec.primary_metric,
        f"cv_{spec.primary_metric}": f"{cv_value:.6g}",
        f"holdout_{spec.primary_metric}": f"{holdout_value:.6g}",
    }
    description = (f"{best.spec.name} trained on data version {data_version}; best cv {spec.primary_metric} "
                   f"of {len(spec.candidates)} candidates.")
    _log_drift_reference(spec, client, best.run_id, data)
    return registry.register(client, spec.registered_model, best.model_uri, best.run_id, version_tags,
                             description)


def _log_drift_reference(spec: ModelingSpec, client: Any, run_id: str | None, data: Prepared) -> None:
    """The training rows' profile, with the model, for comparing later batches against it."""
    from pipelines import drift

    if run_id is None:
        return
    try:
        profile = drift.reference_profile(spec.use_case, spec, data.frame, data.plan.final.train)
        client.log_dict(run_id, profile.to_dict(), drift.REFERENCE_ARTIFACT)
    except Exception as exc:  # noqa: BLE001 - drift checks are a service on top; the model stands
        get_run_logger().warning(f"no drift reference logged for run {run_id}: {exc}")


@task(name="report", cache_policy=NO_CACHE)
def report(spec: ModelingSpec, project: Project, parent_id: str, entries: list[leaderboard.Entry],
           outcomes: list[CandidateOutcome], baselines: dict[str, Any], champion_eval: Any, data: Prepared,
           decision: registry.Decision) -> str:
    """The leaderboard on the parent run (table and plots) and as a Prefect artifact; returns the text."""
    from prefect.artifacts import create_markdown_artifact

    from models import metrics as metric_registry
    from pipelines import plots

    client = tracking.client(project)
    primary = metric_registry.get_metric(spec.task, spec.primary_metric)
    header, rows = leaderboard.table(entries, spec.metrics, spec.primary_metric, primary.greater_is_better)
    text = leaderboard.render_text(header, rows)
    markdown = leaderboard.render_markdown(header, rows)
    client.log_text(parent_id, markdown, "leaderboard.md")
    client.log_text(parent_id, leaderboard.render_csv(header, rows), "leaderboard.csv")
    client.log_dict(parent_id, {"split": data.plan.description, "decision": decision.tags()}, "cycle.json")

    params = {"task": spec.task, "target": spec.target, "split": data.plan.description[:500],
              "primary_metric": spec.primary_metric, "promotion_margin": str(spec.promotion_margin),
              "candidates": ",".join(c.name for c in spec.candidates),
              "baselines": ",".join(spec.baselines), "rows_train": str(len(data.plan.final.train)),
              "rows_holdout": str(len(data.plan.final.test))}
    for key, value in params.items():
        client.log_param(parent_id, key, value)
    for entry in entries:
        value = entry.holdout.get(spec.primary_metric)
        if value is not None and not math.isnan(value):
            name = entry.name.replace(" ", "_")
            client.log_metric(parent_id, f"holdout_{spec.primary_metric}.{name}", float(value))

    names = [e.name for e in entries]
    values = [e.holdout.get(spec.primary_metric, math.nan) for e in entries]
    chosen = next((e.name for e in entries if e.note.startswith("registered")), None)
    references = {f"baseline {n}": e.holdout_metrics.get(spec.primary_metric, math.nan)
                  for n, e in baselines.items()}
    client.log_figure(parent_id, plots.leaderboard_figure(
        names, values, spec.primary_metric, primary.greater_is_better, chosen, references),
        "plots/leaderboard.png")
    holdout_y = data.y[data.plan.final.test]
    scores = {o.spec.name: o.evaluation.holdout.scores for o in outcomes if o.evaluation is not None}
    scores.update({n: e.holdout.scores for n, e in baselines.items()})
    if champion_eval is not None:
        scores[champion_eval.name] = champion_eval.holdout.scores
    for path, figure in _plots_for(spec, holdout_y, scores).items():
        client.log_figure(parent_id, figure, path)

    create_markdown_artifact(
        key=f"leaderboard-{spec.use_case.name}".lower().replace("_", "-"),
        markdown=f"## {spec.use_case.name}: leaderboard\n\n{data.plan.description}\n\n{markdown}\n\n"
                 f"**Decision**: {decision.reason}\n",
        description=f"Candidates, baselines and champion of {spec.use_case.name} on the shared holdout")
    return text
