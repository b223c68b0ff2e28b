"""Data flows: validate a batch, merge it into the use case's dataset, version the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from filelock import FileLock
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines.adapters import files, runtime
from pipelines.adapters import great_expectations as validation
from pipelines.adapters.dvc import DataVersions, VersionRecord
from pipelines.adapters.great_expectations import ValidationReport
from pipelines.config import definitions
from pipelines.config.errors import BadInputError, ValidationFailedError
from pipelines.config.project import Project
from pipelines.config.usecase import UseCase
from pipelines.nodes.merge import Merge, merge_batch

BATCH_MIN_ROWS = 1


@dataclass(frozen=True)
class BatchAdded:
    use_case: str
    source: str
    version: VersionRecord | None
    """None when every row was already in the dataset: nothing to version."""
    new_rows: int
    duplicates_dropped: int
    reports: list[ValidationReport]


def ensure_data(project: Project) -> None:
    """Restore ``data/`` from DVC when a fresh clone lacks it."""
    versions = DataVersions(project)
    if not versions.is_materialised():
        versions.pull()


def validate_file(project: Project, use_case: UseCase, path: Path) -> ValidationReport:
    """The file alone against the use case's suite (no Prefect: a quick, local check)."""
    frame = files.read_table(path, use_case)
    return validation.run_suite(project, use_case, frame, subject="batch", source=str(path),
                                min_rows=BATCH_MIN_ROWS)


@task(name="read batch", cache_policy=NO_CACHE)
def read_batch(use_case: UseCase, path: Path) -> pd.DataFrame:
    return files.read_table(path, use_case)


@task(name="validate", cache_policy=NO_CACHE)
def validate(project: Project, use_case: UseCase, frame: pd.DataFrame, subject: str,
             source: str, min_rows: int) -> ValidationReport:
    report = validation.run_suite(project, use_case, frame, subject=subject, source=source,
                                  min_rows=min_rows)
    get_run_logger().info(report.headline())
    return report


@task(name="merge", cache_policy=NO_CACHE)
def merge(project: Project, use_case: UseCase, batch: pd.DataFrame) -> Merge:
    dataset = use_case.dataset_path(project)
    current = files.read_table(dataset, use_case) if dataset.exists() else None
    return merge_batch(current, batch)


@task(name="version data", cache_policy=NO_CACHE)
def version_data(project: Project, use_case: UseCase, merged: Merge, source: Path) -> VersionRecord:
    """Append the new rows, ``dvc add``, ``dvc push``; on any failure restore what was there."""
    dataset = use_case.dataset_path(project)
    saved = {path: path.read_bytes() if path.exists() else None
             for path in (dataset, project.dvc_file)}
    try:
        if dataset.exists():
            with dataset.open("a", newline="") as stream:
                merged.new_rows.to_csv(stream, header=False, index=False)
        else:
            dataset.parent.mkdir(parents=True, exist_ok=True)
            merged.merged.to_csv(dataset, index=False)
        return DataVersions(project).record(
            use_cases=[use_case.name],
            rows={use_case.name: len(merged.merged)},
            source=source.name,
        )
    except BaseException:
        for path, content in saved.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)
        raise


def _reject(project: Project, use_case: UseCase, path: Path, reason: str,
            report: ValidationReport | None = None) -> None:
    details = ({**report.to_dict(), "text": report.render()} if report else None)
    kept = files.quarantine(project, use_case.name, path, reason, details)
    get_run_logger().error(f"{reason} (kept in {kept.relative_to(project.root)})")


@flow(name="add-batch", log_prints=True)
def add_batch(use_case_name: str, path: str, project_root: str | None = None) -> BatchAdded:
    """Validate a new batch alone and merged with the dataset; version it if both pass."""
    project = Project.find(project_root)
    use_case = definitions.load(project, use_case_name)
    source = Path(path).resolve()
    ensure_data(project)
    try:
        batch = read_batch(use_case, source)
    except BadInputError as exc:
        if source.is_file():
            _reject(project, use_case, source, str(exc))
        raise

    project.state_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(project.lock_file):
        reports = [validate(project, use_case, batch, "batch", str(source), BATCH_MIN_ROWS)]
        if reports[0].success:
            merged = merge(project, use_case, batch)
            reports.append(validate(project, use_case, merged.merged, "merged", str(source),
                                    use_case.min_rows))
        failed = next((r for r in reports if not r.success), None)
        if failed:
            reason = f"rejected: {failed.headline()}"
            _reject(project, use_case, source, reason, failed)
            raise ValidationFailedError(reason, failed)
        record = None
        if merged.new_rows.empty:
            get_run_logger().warning(f"{source.name}: every row is already in the dataset; "
                                     "data version unchanged")
        else:
            record = version_data(project, use_case, merged, source)
    return BatchAdded(use_case.name, str(source), record, len(merged.new_rows),
                      merged.duplicates_dropped, reports)


# --- what the command line calls ------------------------------------------------------------

def add(project: Project, use_case_name: str, path: Path, notify: Callable[[str], None]) -> BatchAdded:
    """``mlops data add``: the ``add-batch`` flow on a Prefect API."""
    definitions.load(project, use_case_name)
    with runtime.prefect_api(runtime.DATA_MODULES, project.state_dir / "prefect-server.log", notify=notify):
        return add_batch(use_case_name, str(path), str(project.root))


def check_file(project: Project, use_case_name: str, path: Path) -> ValidationReport:
    return validate_file(project, definitions.load(project, use_case_name), path)


def pull(project: Project) -> tuple[str, bool]:
    """Restore ``data/``; returns the data version and whether ``dvc status`` is clean."""
    versions = DataVersions(project)
    version = versions.pull()
    return version, versions.is_clean()


def checkout(project: Project, version: str) -> str:
    return DataVersions(project).checkout(version)


def history(project: Project, use_case_name: str) -> tuple[list[VersionRecord], str | None]:
    """The data versions that changed the use case's dataset, oldest first, and the current one."""
    name = definitions.load(project, use_case_name).name
    versions = DataVersions(project)
    return [r for r in versions.history() if name in r.use_cases], versions.current()
