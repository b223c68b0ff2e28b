"""One file from the landing zone: validate and version it, measure its drift, announce it.

Retraining is not called from here: the flow emits a Prefect event carrying the new data version,
and the retrain deployment's trigger decides, under its own concurrency limit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from models.drift import ReferenceProfile
from pipelines.adapters import deployments, files
from pipelines.adapters.registry import Registry
from pipelines.config import definitions
from pipelines.config.errors import BadInputError, ValidationFailedError
from pipelines.config.project import Project
from pipelines.flows.data import add_batch
from pipelines.nodes import drift


@dataclass
class Landing:
    use_case: str
    source: str
    status: str
    """accepted, duplicate (every row already held) or rejected."""
    reason: str = ""
    data_version: str | None = None
    new_rows: int = 0
    drift: dict[str, Any] | None = None
    events: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@task(name="measure drift", cache_policy=NO_CACHE)
def measure_drift(project: Project, use_case_name: str, source: Path, data_version: str) -> dict[str, Any]:
    """The accepted batch against the champion's training data; logged to MLflow."""
    use_case = definitions.load(project, use_case_name)
    logger = get_run_logger()
    registry = Registry(project)
    champion, profile = registry.champion_document(use_case.registered_model, drift.REFERENCE_ARTIFACT)
    if profile is None:
        message = "no champion yet" if champion is None else f"champion v{champion} has no drift reference"
        logger.info(f"{use_case.name}: drift not measured: {message}")
        return {"measured": False, "reason": message, "drifted": False}
    dataset = files.read_table(use_case.dataset_path(project), use_case)
    rows = drift.batch_rows(use_case, dataset, files.read_table(source, use_case))
    policy = use_case.retraining
    report = ReferenceProfile.from_dict(profile).compare(
        drift.monitored_frame(use_case, dataset).iloc[rows], policy.drift_threshold, policy.drift_min_rows)
    run_id = _log_drift(registry, use_case.name, use_case.experiment, data_version, source.name, report,
                        champion)
    logger.info(f"{use_case.name}: {source.name} vs champion v{champion}: {report.summary()}")
    return {"measured": True, "champion_version": champion, "mlflow_run_id": run_id,
            "summary": report.summary(), **report.to_dict()}


def _log_drift(registry: Registry, use_case: str, experiment: str, data_version: str, source: str,
               report: Any, champion: str) -> str:
    """A run of role ``data-batch`` in the use case's experiment: PSI per column, the verdict."""
    tracker = registry.tracker
    verdict = "drifted" if report.drifted else ("not judged" if not report.judged else "no drift")
    tags = {**tracker.lineage_tags(use_case, data_version, "passed"), "source_file": source,
            "drift.verdict": verdict, "drift.champion_version": champion}
    metrics = {"drift_max_excess_psi": report.max_excess, "batch_rows": float(report.rows),
               **{f"psi.{c.column}": c.psi for c in report.columns}}
    return tracker.log_batch_run(tracker.experiment_id(experiment), f"batch {source}", tags, metrics,
                                 {"drift.json": report.to_dict()})


@task(name="announce data version", cache_policy=NO_CACHE)
def announce(use_case_name: str, source: Path, data_version: str, drift_result: dict[str, Any]) -> list[str]:
    """Prefect events that retrain deployments' triggers listen for."""
    payload = {"use_case": use_case_name, "data_version": data_version, "source": source.name,
               "drifted": bool(drift_result.get("drifted")),
               "max_excess_psi": drift_result.get("max_excess_psi")}
    names = deployments.announce(use_case_name, payload)
    get_run_logger().info(f"{use_case_name}: emitted {', '.join(names)} for data version {data_version}")
    return names


@flow(name="land-file", log_prints=True)
def land_file(use_case_name: str, path: str, project_root: str | None = None) -> Landing:
    """Validate and version one landed file; rejected files go to quarantine and start nothing."""
    project = Project.find(project_root)
    source = Path(path).resolve()
    try:
        added = add_batch(use_case_name, str(source), str(project.root))
    except (ValidationFailedError, BadInputError) as exc:
        return Landing(use_case_name, source.name, "rejected", reason=str(exc))
    if added.version is None:
        return Landing(use_case_name, source.name, "duplicate",
                       reason=f"all {added.duplicates_dropped} rows are already in the dataset")
    version = added.version.version
    try:
        drift_result = measure_drift(project, use_case_name, source, version)
    except Exception as exc:  # noqa: BLE001 - the batch is versioned; drift is a report on top
        get_run_logger().warning(f"{use_case_name}: drift not measured: {exc}")
        drift_result = {"measured": False, "reason": f"{type(exc).__name__}: {exc}", "drifted": False}
    events = announce(use_case_name, source, version, drift_result)
    return Landing(use_case_name, source.name, "accepted", data_version=version,
                   new_rows=added.new_rows, drift=drift_result, events=events)
