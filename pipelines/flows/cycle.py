"""One cycle per use case: ingest → validate → version (then the model stages)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from pipelines import ingest, usecase
from pipelines.errors import ValidationFailedError
from pipelines.flows.data import ensure_data, validate
from pipelines.project import Project
from pipelines.versioning import DataVersions


@flow(name="cycle", log_prints=True)
def run_cycle(use_case_name: str = "all", project_root: str | None = None) -> list[str]:
    """Validate each use case's versioned dataset; returns one summary line per use case."""
    project = Project.find(project_root)
    use_cases = usecase.resolve(project, use_case_name)
    ensure_data(project)
    version = DataVersions(project).current()
    lines = []
    for use_case in use_cases:
        dataset = use_case.dataset_path(project)
        frame = ingest.read_table(dataset, use_case)
        report = validate(project, use_case, frame, "merged", str(dataset), use_case.min_rows)
        if not report.success:
            raise ValidationFailedError(report.headline(), report)
        lines.append(f"{use_case.name}: {len(frame)} rows, data version {version}, "
                     f"validation passed ({report.evaluated} expectations)")
    get_run_logger().info("\n".join(lines))
    return lines
