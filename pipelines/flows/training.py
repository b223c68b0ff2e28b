"""Features → train → evaluate → register → promote → report, for one use case's validated data.

Candidates train side by side through a Prefect task runner (threads of the command, or the
workers of a Dask cluster when ``MLOPS_DASK_ADDRESS`` is set); each becomes a nested MLflow run of
the cycle's parent run. The champion alias moves last, so a failure anywhere leaves it in place.
Wiring only: the steps are in ``pipelines.nodes``, the MLflow calls in the tracker and registry.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from threadpoolctl import threadpool_limits

from models import interrupt
from models.promotion import DECISION_TAG, PENDING, Decision
from pipelines.adapters import concurrency, dask_cluster
from pipelines.adapters.registry import Registry
from pipelines.adapters.tracker import (
    FAILED,
    KILLED,
    TAG_CANDIDATE,
    TAG_FAMILY,
    TAG_FOUND_DEAD,
    TAG_WORKER,
    StoreAccess,
    Tracker,
)
from pipelines.config import failpoints
from pipelines.config.errors import MlopsError, ServiceError
from pipelines.config.project import Project
from pipelines.config.usecase import UseCase
from pipelines.nodes import drift, reporting, training
from pipelines.nodes.reporting import CycleReport
from pipelines.nodes.training import CandidateOutcome, ChampionScore, Prepared


class TrainingError(MlopsError):
    """No candidate could be trained, or the cycle could not be recorded."""


@dataclass(frozen=True)
class CycleRun:
    """The cycle's parent MLflow run: where candidates nest, and the lineage tags they all carry."""

    experiment_id: str
    run_id: str
    tags: dict[str, str]


@dataclass(frozen=True)
class LogElsewhere:
    """What a candidate trained in another process needs to log its own run: the store (with
    credentials), the cycle it nests in, and the training dataset. The experiment is the cycle's,
    resolved once by the command: concurrent creations race, and under auth the loser gets a 403."""

    store: StoreAccess
    cycle: CycleRun
    dataset: Any


@dataclass
class TrainingOutcome:
    use_case: str
    experiment: str
    parent_run_id: str
    registered_model: str
    version: str | None
    decision: Decision | None
    champion: str | None
    leaderboard: str
    failed: list[str] = field(default_factory=list)
    run_url: str | None = None


@task(name="prepare training data", cache_policy=NO_CACHE)
def prepare_data(use_case: UseCase, frame: pd.DataFrame) -> Prepared:
    data = training.prepare(use_case, frame)
    get_run_logger().info(f"{use_case.name}: {data.plan.description}; {len(data.plan.final.train)} training "
                          f"rows, {len(data.plan.final.test)} holdout rows")
    return data


@task(name="train candidate", task_run_name="train {name}", cache_policy=NO_CACHE)
def train_candidate(use_case: UseCase, name: str, data: Prepared,
                    log_here: LogElsewhere | None = None) -> CandidateOutcome:
    """Cross-validate and fit one candidate; on a Dask worker (``log_here``) also log its run there."""
    logger = get_run_logger()
    failpoints.hit("cycle.train_candidate")
    failpoints.hit(f"cycle.train_candidate.{name}")
    # OpenMP thread counts are per calling thread, so each training thread sets its own.
    with threadpool_limits(limits=concurrency.thread_limits(dask_cluster.threads_beside())):
        outcome = training.train(use_case, name, data, progress=logger.info)
    outcome.worker = dask_cluster.worker_identity()
    if outcome.error:
        logger.error(f"candidate {name} failed: {outcome.error}")
    if log_here is not None:
        tracker = Tracker.elsewhere(log_here.store)
        with threadpool_limits(limits=1, user_api="blas"):
            _log_outcome(use_case, tracker, log_here.cycle, outcome, data, log_here.dataset)
        if outcome.evaluation is not None:
            # The model is in the store now; shipping it back would only cost the network.
            outcome.evaluation.model = None
    return outcome


@task(name="evaluate baselines", cache_policy=NO_CACHE)
def evaluate_baselines(use_case: UseCase, data: Prepared) -> dict[str, Any]:
    return training.evaluate_baselines(use_case, data)


@task(name="score champion", cache_policy=NO_CACHE)
def score_champion(use_case: UseCase, project: Project, data: Prepared) -> ChampionScore:
    """The current champion on this cycle's holdout; an unscorable one blocks promotion, not the cycle."""
    return _score_champion(use_case, Registry(project), data)


def _score_champion(use_case: UseCase, registry: Registry, data: Prepared,
                    scored: ChampionScore | None = None) -> ChampionScore:
    """The champion now; ``scored`` is reused when it is still the same version."""
    champion = registry.champion(use_case.registered_model)
    if champion is None:
        return ChampionScore()
    version = str(champion.version)
    if scored is not None and scored.version == version:
        return scored
    try:
        model = registry.load_model(use_case.registered_model, version)
        return ChampionScore(version, training.evaluate_champion(use_case, version, model, data))
    except ServiceError:
        raise
    except Exception as exc:  # noqa: BLE001 - recorded in the decision; a person decides then
        get_run_logger().warning(f"champion v{version} could not be scored: {exc}")
        return ChampionScore(version, error=f"{type(exc).__name__}: {exc}")


@task(name="log candidate", task_run_name="log {outcome.name}", cache_policy=NO_CACHE)
def log_candidate(use_case: UseCase, project: Project, cycle: CycleRun, outcome: CandidateOutcome,
                  data: Prepared, dataset: Any) -> CandidateOutcome:
    """A nested run with parameters, fold and holdout metrics, plots and the model itself."""
    return _log_outcome(use_case, Tracker(project), cycle, outcome, data, dataset)


def _log_outcome(use_case: UseCase, tracker: Tracker, cycle: CycleRun, outcome: CandidateOutcome,
                 data: Prepared, dataset: Any) -> CandidateOutcome:
    record = reporting.candidate_record(use_case, outcome, data)
    tags = {**cycle.tags, TAG_WORKER: outcome.worker} if outcome.worker else cycle.tags
    outcome.run_id, outcome.model_uri = tracker.log_candidate(cycle.experiment_id, cycle.run_id, tags,
                                                              record, dataset)
    return outcome


@task(name="register best candidate", cache_policy=NO_CACHE)
def register_best(use_case: UseCase, project: Project, best: CandidateOutcome, cycle: CycleRun,
                  data: Prepared, data_version: str) -> str:
    """A new version of the use case's model, alias challenger, with the training data's drift profile."""
    tags = {**reporting.version_tags(use_case, best, cycle.tags, cycle.run_id, TAG_FAMILY, TAG_CANDIDATE,
                                    data),
            DECISION_TAG: PENDING}
    description = (f"{best.name} trained on data version {data_version}; best cv {use_case.primary_metric} "
                   f"of {len(use_case.candidates)} candidates.")
    _log_drift_reference(use_case, project, best.run_id, data)
    version = Registry(project).register(use_case.registered_model, best.model_uri, best.run_id, tags,
                                         description)
    return str(version.version)


def _log_drift_reference(use_case: UseCase, project: Project, run_id: str | None, data: Prepared) -> None:
    """The training rows' profile, with the model, for comparing later batches against it."""
    if run_id is None:
        return
    try:
        profile = drift.reference_profile(use_case, data.frame, data.plan.final.train)
        Tracker(project).log_document(run_id, profile.to_dict(), drift.REFERENCE_ARTIFACT)
    except Exception as exc:  # noqa: BLE001 - drift checks are a service on top; the model stands
        get_run_logger().warning(f"no drift reference logged for run {run_id}: {exc}")


@task(name="decide", cache_policy=NO_CACHE)
def decide(use_case: UseCase, project: Project, cycle: CycleRun, version: str, best: CandidateOutcome,
           baselines: dict[str, Any], scored: ChampionScore,
           data: Prepared) -> tuple[Decision, ChampionScore]:
    """Judge the challenger against the champion as it is now, and record the decision as pending.

    Call under the decision lock: a champion set by a concurrent cycle since this one scored
    the champion is scored afresh on this cycle's holdout, so the decision is never taken
    against a stale champion.
    """
    registry = Registry(project)
    champion = _score_champion(use_case, registry, data, scored)
    if champion.version != scored.version:
        get_run_logger().info(f"{use_case.registered_model}: champion is now v{champion.version} "
                              f"(was {scored.version or 'none'} when this cycle began); judged against it")
    decision = training.promotion(use_case, best, baselines, champion, data)
    registry.tag_version(use_case.registered_model, version, decision.pending_tags())
    registry.tracker.set_tags(cycle.run_id, decision.pending_tags())
    return decision, champion


@task(name="carry out decision", cache_policy=NO_CACHE)
def carry_out(use_case: UseCase, project: Project, cycle: CycleRun, version: str, decision: Decision) -> None:
    """``champion`` moves (if earned) before the decision is marked done, so ``pending`` never lies."""
    registry = Registry(project)
    if decision.promote:
        registry.set_champion(use_case.registered_model, version, decision.reason,
                              actor=f"mlops run (cycle {cycle.run_id})")
        failpoints.hit("cycle.champion_moved")
    registry.tag_version(use_case.registered_model, version, {DECISION_TAG: decision.outcome})
    registry.tracker.set_tags(cycle.run_id, {DECISION_TAG: decision.outcome})
    get_run_logger().info(f"{use_case.registered_model} v{version}: {decision.reason}")


@task(name="report", cache_policy=NO_CACHE)
def report(use_case: UseCase, project: Project, cycle: CycleRun, content: CycleReport, plan: str,
           decision: Decision) -> str:
    """The leaderboard on the parent run (table and plots) and as a Prefect artifact; returns the text."""
    from prefect.artifacts import create_markdown_artifact

    Tracker(project).log_report(cycle.run_id, content.params, content.metrics, content.texts, content.figures,
                                content.documents)
    create_markdown_artifact(
        key=f"leaderboard-{use_case.name}".lower().replace("_", "-"),
        markdown=f"## {use_case.name}: leaderboard\n\n{plan}\n\n{content.markdown}\n\n"
                 f"**Decision**: {decision.reason}\n",
        description=f"Candidates, baselines and champion of {use_case.name} on the shared holdout")
    return content.text


# --- the stage sequence ----------------------------------------------------------------------

def train_and_register(use_case: UseCase, project: Project, frame: pd.DataFrame, data_version: str,
                       validation: str, trigger: str = "manual") -> TrainingOutcome:
    """Everything after validation and versioning; call inside a Prefect flow."""
    tracker = Tracker(project)
    experiment_id = tracker.experiment_id(use_case.experiment, use_case.description)
    close_dead_cycles(use_case, project, experiment_id)
    tags = tracker.lineage_tags(use_case.name, data_version, validation)
    cycle = CycleRun(experiment_id, tracker.start_cycle(experiment_id, tags, trigger), tags)
    get_run_logger().info(f"MLflow run {cycle.run_id} in experiment '{use_case.experiment}' ({tracker.uri})")
    try:
        outcome = _train_decide_report(use_case, project, cycle, frame, data_version)
    except BaseException as exc:
        _close_stopped_cycle(use_case, project, cycle, exc)
        raise
    tracker.finish(cycle.run_id)
    champion = Registry(project).champion(use_case.registered_model)
    outcome.champion = str(champion.version) if champion else None
    return outcome


def close_dead_cycles(use_case: UseCase, project: Project, experiment_id: str) -> None:
    """Runs and pending decisions that a killed cycle of this use case left behind, put right."""
    registry = Registry(project)
    closed = registry.tracker.close_dead_runs(experiment_id)
    if not closed:
        return
    logger = get_run_logger()
    logger.warning(f"{use_case.name}: closed {len(closed)} run(s) of a stopped cycle as KILLED "
                   f"(tag {TAG_FOUND_DEAD})")
    for line in registry.settle_pending(use_case.registered_model, set(closed)):
        logger.warning(line)


def _close_stopped_cycle(use_case: UseCase, project: Project, cycle: CycleRun, error: BaseException) -> None:
    """The cycle's run ends KILLED when the command was stopped, FAILED otherwise; a pending decision
    says what became of it. Nothing is raised here: the original error is what the user needs."""
    stopped = not isinstance(error, Exception) or interrupt.requested()
    with contextlib.suppress(Exception):
        registry = Registry(project)
        registry.tracker.finish(cycle.run_id, KILLED if stopped else FAILED)
        registry.settle_pending(use_case.registered_model, {cycle.run_id})


def _train_decide_report(use_case: UseCase, project: Project, cycle: CycleRun, frame: pd.DataFrame,
                         data_version: str) -> TrainingOutcome:
    data = prepare_data(use_case, frame)
    outcomes, baselines, scored = _train_all(use_case, project, cycle, data, data_version)
    trained = [o for o in outcomes if o.evaluation is not None]
    if not trained:
        errors = "; ".join(f"{o.name}: {o.error}" for o in outcomes)
        raise TrainingError(f"{use_case.name}: every candidate failed ({errors})")
    best = training.choose_best(use_case, trained)
    version = register_best(use_case, project, best, cycle, data, data_version)
    failpoints.hit("cycle.registered")
    with concurrency.decision_lock(project, use_case.registered_model):
        decision, champion = decide(use_case, project, cycle, version, best, baselines, scored, data)
        failpoints.hit("cycle.decided")
        rows = reporting.entries(use_case, outcomes, best.name, version, decision, baselines, champion,
                                 data)
        content = reporting.cycle_report(use_case, rows, outcomes, baselines, champion, data, decision)
        text = report(use_case, project, cycle, content, data.plan.description, decision)
        failpoints.hit("cycle.reported")
        carry_out(use_case, project, cycle, version, decision)
    failpoints.hit("cycle.carried_out")
    return TrainingOutcome(use_case.name, use_case.experiment, cycle.run_id, use_case.registered_model,
                           version, decision, None, text, [o.name for o in outcomes if o.evaluation is None],
                           Tracker(project).run_url(cycle.experiment_id, cycle.run_id))


def _train_all(use_case: UseCase, project: Project, cycle: CycleRun, data: Prepared,
               data_version: str) -> tuple[list[CandidateOutcome], dict[str, Any], ChampionScore]:
    """Candidates in the task runner; baselines, the champion and logging meanwhile.

    On a Dask cluster each candidate logs its own run where it trained; in threads, the command
    logs each one as it finishes.
    """
    tracker = Tracker(project)
    # OpenBLAS's thread count is process-wide: set here, it holds for the training threads too.
    with threadpool_limits(limits=1, user_api="blas"), dask_cluster.cluster_runner() as cluster:
        dataset = _training_dataset(use_case, project, tracker, data, data_version) if cluster else None
        log_here = LogElsewhere(tracker.access(), cycle, dataset) if cluster else None
        rows = _onto_cluster(cluster, data) if cluster else data
        futures = {name: _submit(cluster, {"use_case": use_case, "name": name, "data": rows,
                                           "log_here": log_here})
                   for name in use_case.candidates}
        baselines = evaluate_baselines(use_case, data)
        champion = score_champion(use_case, project, data)
        if dataset is None:
            dataset = _training_dataset(use_case, project, tracker, data, data_version)
        outcomes = [_collect(use_case, project, cycle, name, future, data, dataset)
                    for name, future in futures.items()]
    return outcomes, baselines, champion


def _submit(cluster: Any, parameters: dict[str, Any]) -> Any:
    """To the cluster's runner, or to the flow's own (threads, which a stopped command does not wait for)."""
    if cluster is None:
        return train_candidate.submit(**parameters)
    return cluster.submit(train_candidate, parameters)


def _onto_cluster(runner: Any, data: Prepared) -> Any:
    """The workers set up for this cycle, and the data on the cluster: sent once, not per candidate."""
    from pipelines.adapters.dask_worker import point_workers_at_this_api

    point_workers_at_this_api(runner.client)
    return runner.client.scatter(data)


def _training_dataset(use_case: UseCase, project: Project, tracker: Tracker, data: Prepared,
                      data_version: str) -> Any:
    # One dataset object for every candidate: MLflow infers its schema once.
    training_rows = reporting.model_inputs(use_case, data.frame.iloc[data.plan.final.train])
    return tracker.training_dataset(training_rows, str(use_case.dataset_path(project)),
                                    f"{use_case.name}-train", data_version)


def _collect(use_case: UseCase, project: Project, cycle: CycleRun, name: str, future: Any, data: Prepared,
             dataset: Any) -> CandidateOutcome:
    """A candidate's outcome, logged; a candidate whose Dask worker died fails alone."""
    try:
        outcome = future.result()
    except Exception as exc:
        if not dask_cluster.is_lost_worker(exc):
            raise
        reason = dask_cluster.describe_loss(exc)
        get_run_logger().error(f"candidate {name} failed: {reason}")
        dask_cluster.mark_task_run_crashed(getattr(future, "task_run_id", None), reason)
        outcome = CandidateOutcome(name, use_case.candidates[name], error=reason)
        outcome.run_id = Tracker(project).fail_running_candidate(cycle.experiment_id, cycle.run_id, name,
                                                                 reason)
    if outcome.run_id is None:
        outcome = log_candidate(use_case, project, cycle, outcome, data, dataset)
    return outcome
