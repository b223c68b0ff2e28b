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

from pipelines import ingest, usecase
from pipelines.errors import BadInputError, ValidationFailedError
from pipelines.flows.data import add_batch
from pipelines.modeling import modeling_spec
from pipelines.project import Project
from pipelines.retraining import retraining_spec

EVENT_VERSIONED = "mlops.data.versioned"
EVENT_DRIFTED = "mlops.data.drifted"


def use_case_resource(use_case: str) -> dict[str, str]:
    return {"prefect.resource.id": f"mlops.use-case.{use_case}", "prefect.resource.name": use_case}


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
    from pipelines import drift, tracking

    use_case = usecase.load(project, use_case_name)
    spec = modeling_spec(use_case)
    retraining = retraining_spec(use_case)
    logger = get_run_logger()
    client = tracking.client(project)
    champion, reference = drift.champion_reference(client, spec.registered_model)
    if reference is None:
        message = ("no champion yet" if champion is None
                   else f"champion v{champion} has no drift reference")
        logger.info(f"{use_case.name}: drift not measured: {message}")
        return {"measured": False, "reason": message, "drifted": False}
    dataset = ingest.read_table(use_case.dataset_path(project), use_case)
    batch = ingest.read_table(source, use_case)
    monitored = drift.monitored_frame(use_case, spec, dataset)
    rows = drift.batch_rows(use_case, dataset, batch)
    report = reference.compare(monitored.iloc[rows], retraining.drift_threshold, retraining.drift_min_rows)
    experiment = tracking.experiment_id(client, project, spec.experiment)
    tags = tracking.lineage_tags(use_case.name, data_version, "passed", tracking.git_state(project))
    run_id = drift.log_drift(client, experiment, tags, source.name, report, champion)
    logger.info(f"{use_case.name}: {source.name} vs champion v{champion}: {report.summary()}")
    return {"measured": True, "champion_version": champion, "mlflow_run_id": run_id,
            "summary": report.summary(), **report.to_dict()}


@task(name="announce data version", cache_policy=NO_CACHE)
def announce(use_case_name: str, source: Path, data_version: str, drift_result: dict[str, Any]) -> list[str]:
    """Prefect events that retrain deployments' triggers listen for."""
    from prefect.events import emit_event

    payload = {"use_case": use_case_name, "data_version": data_version, "source": source.name,
               "drifted": bool(drift_result.get("drifted")),
               "max_excess_psi": drift_result.get("max_excess_psi")}
    names = [EVENT_VERSIONED] + ([EVENT_DRIFTED] if payload["drifted"] else [])
    for name in names:
        emit_event(event=name, resource=use_case_resource(use_case_name), payload=payload)
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
