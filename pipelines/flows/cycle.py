"""A retraining cycle: ingest → validate → version → features → train → evaluate → register → promote.

``retrain`` is one use case's cycle (the flow that schedules and data-arrival triggers run);
``cycle`` runs it for one or every use case and keeps going when one of them fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pandas as pd
from filelock import FileLock
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from pipelines.adapters import concurrency, files, runtime, validation_record
from pipelines.adapters.dvc import DataVersions
from pipelines.adapters.tracker import Tracker
from pipelines.config import definitions
from pipelines.config.errors import MlopsError, ValidationFailedError
from pipelines.config.project import Project
from pipelines.config.settings import Settings
from pipelines.config.usecase import UseCase
from pipelines.flows.data import ensure_data, validate_dataset
from pipelines.flows.training import TrainingOutcome, train_and_register
from pipelines.nodes.estimators import check_data


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
        if training.run_url:
            lines[-1] += f"\n  {training.run_url}"
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
            trigger: str = "manual", tune: bool = True) -> CycleOutcome:
    """One use case's full cycle on its current dataset.

    ``data_version`` is set by data-arrival triggers: the run trains on the current data, which
    may already include later batches, and does nothing when that data was trained on already, so
    a burst of batches never trains twice on the same data version. ``tune=False`` (or
    ``MLOPS_TUNING=false``) keeps every candidate at its declared hyperparameters.
    """
    project = Project.find(project_root)
    use_case = definitions.load(project, use_case_name)
    if candidates:
        use_case = use_case.with_candidates(candidates)
    if not (tune and Settings.load().tuning):
        use_case = use_case.without_tuning()
    # Before the data is touched: a store that is down stops the cycle with nothing half-done.
    Tracker(project).check_available()
    frame, version, validation = _read_validate_version(project, use_case)
    logger = get_run_logger()
    logger.info(f"{use_case.name}: retraining ({trigger}) on data version {version}")
    if data_version is not None and Tracker(project).already_trained(use_case.experiment, version):
        skipped = (f"nothing to do: data version {version} is already trained on "
                   f"(triggered by {data_version})")
        logger.info(f"{use_case.name}: {skipped}")
        return CycleOutcome(use_case.name, len(frame), version, validation, None, skipped)
    training = train_and_register(use_case, project, frame, version, "passed", trigger)
    return CycleOutcome(use_case.name, len(frame), version, validation, training)


def _read_validate_version(project: Project, use_case: UseCase) -> tuple[pd.DataFrame, str, str]:
    """The dataset, checked against the definition and its suite, and the data version it is."""
    ensure_data(project)
    project.state_dir.mkdir(parents=True, exist_ok=True)
    dataset = use_case.dataset_path(project)
    # Held while reading and versioning only: a batch landing meanwhile waits, then trains next.
    with FileLock(project.lock_file):
        frame = files.read_table(dataset, use_case)
        check_data(use_case, frame)
        report, checked = validate_dataset(project, use_case, frame)
        if not report.success:
            raise ValidationFailedError(f"{use_case.name}: {report.headline()}", report)
        version = version_dataset(project, use_case, len(frame))
    return frame, version, f"validation passed ({checked})"


@flow(name="cycle", log_prints=True)
def run_cycle(use_case_name: str = "all", project_root: str | None = None,
              candidates: list[str] | None = None, tune: bool = True) -> list[CycleOutcome]:
    """``retrain`` for one or every use case; every use case gets its turn even if one fails."""
    project = Project.find(project_root)
    # Every definition is read first: a typo in any fails before hours of training on the others.
    use_cases = definitions.resolve(project, use_case_name)
    for use_case in use_cases:
        if candidates:
            use_case.with_candidates(candidates)
    outcomes, failures = [], []
    for use_case in use_cases:
        try:
            outcomes.append(retrain(use_case.name, str(project.root), candidates, tune=tune))
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


def run(project: Project, use_case_name: str, candidates: list[str] | None,
        notify: Callable[[str], None], tune: bool = True) -> list[CycleOutcome]:
    """``mlops run``: the definitions are checked, then the cycle runs on a Prefect API."""
    use_cases = definitions.resolve(project, use_case_name)
    if candidates:
        use_cases = [u.with_candidates(candidates) for u in use_cases]

    def check_first() -> None:
        for use_case in use_cases:
            _check_data_first(project, use_case)
        Tracker(project).check_available()

    # The server boots while the data and the tracking store are checked; a failed check stops it.
    with runtime.prefect_api(_libraries(project, use_cases), project.state_dir / "prefect-server.log",
                             notify=notify, meanwhile=check_first):
        if len(use_cases) == 1:
            return [retrain(use_cases[0].name, str(project.root), candidates, tune=tune)]
        return run_cycle(use_case_name, str(project.root), candidates, tune=tune)


def _libraries(project: Project, use_cases: list[UseCase]) -> Iterator[str]:
    """What the cycle will import, loaded while the server boots. Read after the checks, when the data
    is in place: datasets that passed their suites as they are need no Great Expectations."""
    modules = runtime.cycle_modules(c.model for u in use_cases for c in u.candidates.values())
    validated = all(validation_record.find(project, u, u.dataset_path(project)) for u in use_cases)
    yield from (m for m in modules if not (validated and m in runtime.DATA_MODULES))


def _check_data_first(project: Project, use_case: UseCase) -> None:
    """What the definition asks of its data, before any flow runs or anything is validated."""
    ensure_data(project)
    dataset = use_case.dataset_path(project)
    if dataset.exists():
        try:
            frame = files.read_table(dataset, use_case)
        except MlopsError:
            return  # the cycle reports an unreadable dataset in its own words
        check_data(use_case, frame)
