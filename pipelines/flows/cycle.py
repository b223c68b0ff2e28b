"""A retraining cycle: ingest → validate → version → features → train → evaluate → register → promote.

``retrain`` is one use case's cycle (the flow that schedules and data-arrival triggers run);
``cycle`` runs it for one or every use case and keeps going when one of them fails.
"""

from __future__ import annotations

from dataclasses import dataclass

from filelock import FileLock
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pipelines import concurrency, ingest, usecase
from pipelines.errors import MlopsError, ValidationFailedError
from pipelines.flows.data import ensure_data, validate
from pipelines.flows.train import TrainingOutcome, train_and_register
from pipelines.modeling import ModelingSpec, modeling_spec
from pipelines.project import Project
from pipelines.usecase import UseCase
from pipelines.versioning import DataVersions


@dataclass(frozen=True)
class CycleOutcome:
    use_case: str
    rows: int
    data_version: str
    validation: str
    training: TrainingOutcome | None
    skipped: str | None = None
    """Why nothing was trained, when a data-arrival trigger found its data already trained on."""

    def summary(self) -> str:
        training = self.training
        if training is None:
            return f"{self.use_case}: data version {self.data_version}; {self.skipped}"
        decision = training.decision
        lines = [
            f"{self.use_case}: {self.rows} rows, data version {self.data_version}; {self.validation}",
            training.leaderboard,
            f"{training.registered_model} v{training.version} registered as challenger; "
            f"{decision.reason if decision else ''}",
            f"champion: {training.registered_model} v{training.champion}" if training.champion
            else f"no champion yet for {training.registered_model}",
            f"MLflow: experiment '{training.experiment}', run {training.parent_run_id}",
        ]
        if training.failed:
            lines.append(f"failed candidates: {', '.join(training.failed)}")
        return "\n".join(lines)


@task(name="version dataset", cache_policy=NO_CACHE)
def version_dataset(project: Project, use_case: UseCase, rows: int) -> str:
    """The data version to train on; data edited outside ``mlops data add`` is versioned first."""
    versions = DataVersions(project)
    if versions.is_clean():
        return versions.current() or "unversioned"
    get_run_logger().warning("data/ differs from data.dvc (changed outside `mlops data add`); "
                             "recording it as a new data version before training")
    return versions.record(use_cases=[use_case.name], rows={use_case.name: rows},
                               source="mlops run").version


@flow(name="retrain", log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=concurrency.workers()))
def retrain(use_case_name: str, project_root: str | None = None,
            candidates: list[str] | None = None, data_version: str | None = None,
            trigger: str = "manual") -> CycleOutcome:
    """One use case's full cycle on its current dataset.

    ``data_version`` is set by data-arrival triggers: the run trains on the current data, which
    may already include later batches, and does nothing when that data was trained on already, so
    a burst of batches never trains twice on the same data version.
    """
    project = Project.find(project_root)
    use_case = usecase.load(project, use_case_name)
    spec = modeling_spec(use_case)
    if candidates:
        spec = spec.with_candidates(candidates)
    ensure_data(project)
    project.state_dir.mkdir(parents=True, exist_ok=True)
    dataset = use_case.dataset_path(project)
    # Held while reading and versioning only: a batch landing meanwhile waits, then trains next.
    with FileLock(project.lock_file):
        frame = ingest.read_table(dataset, use_case)
        report = validate(project, use_case, frame, "merged", str(dataset), use_case.min_rows)
        if not report.success:
            raise ValidationFailedError(f"{use_case.name}: {report.headline()}", report)
        version = version_dataset(project, use_case, len(frame))
    validation = f"validation passed ({report.evaluated} expectations)"
    logger = get_run_logger()
    logger.info(f"{use_case.name}: retraining ({trigger}) on data version {version}")
    if data_version is not None and already_trained(project, spec, version):
        skipped = (f"nothing to do: data version {version} is already trained on "
                   f"(triggered by {data_version})")
        logger.info(f"{use_case.name}: {skipped}")
        return CycleOutcome(use_case.name, len(frame), version, validation, None, skipped)
    training = train_and_register(spec, project, frame, version, "passed", trigger)
    return CycleOutcome(use_case.name, len(frame), version, validation, training)


def already_trained(project: Project, spec: ModelingSpec, data_version: str) -> bool:
    """Whether a finished cycle of this use case trained on ``data_version``."""
    from pipelines import tracking

    client = tracking.client(project)
    experiment = client.get_experiment_by_name(spec.experiment)
    if experiment is None:
        return False
    found = client.search_runs(
        [experiment.experiment_id],
        filter_string=(f"tags.{tracking.TAG_DATA_VERSION} = '{data_version}' and "
                       f"tags.{tracking.TAG_ROLE} = 'cycle' and attributes.status = 'FINISHED'"),
        max_results=1)
    return bool(found)


@flow(name="cycle", log_prints=True)
def run_cycle(use_case_name: str = "all", project_root: str | None = None,
              candidates: list[str] | None = None) -> list[CycleOutcome]:
    """``retrain`` for one or every use case; every use case gets its turn even if one fails."""
    project = Project.find(project_root)
    use_cases = usecase.resolve(project, use_case_name)
    for use_case in use_cases:
        # A typo in any definition fails before hours of training on the others.
        spec = modeling_spec(use_case)
        if candidates:
            spec.with_candidates(candidates)
    outcomes, failures = [], []
    for use_case in use_cases:
        try:
            outcomes.append(retrain(use_case.name, str(project.root), candidates))
        except MlopsError as exc:
            if len(use_cases) == 1:
                raise
            get_run_logger().error(f"{use_case.name}: {exc}")
            failures.append(f"{use_case.name}: {exc}")
    if failures:
        raise CycleFailedError(outcomes, failures)
    return outcomes


class CycleFailedError(MlopsError):
    """Some use cases failed; the others' outcomes are kept for the report."""

    def __init__(self, outcomes: list[CycleOutcome], failures: list[str]) -> None:
        super().__init__(f"{len(failures)} use case(s) failed: " + "; ".join(failures))
        self.outcomes = outcomes
