"""Data flows: validate a batch, merge it into the use case's dataset, version the result."""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pandas as pd
from filelock import FileLock
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.exceptions import MissingContextError

from pipelines.adapters import files, runtime, validation_record
from pipelines.adapters import great_expectations as validation
from pipelines.adapters.dvc import DataChange, DataVersions, Recovery, VersionRecord
from pipelines.adapters.great_expectations import ValidationReport
from pipelines.adapters.intent import IntentLog, Writer, sha256_of
from pipelines.config import definitions
from pipelines.config.errors import BadInputError, ValidationFailedError
from pipelines.config.project import Project
from pipelines.config.usecase import UseCase
from pipelines.flows.file_check import BATCH_MIN_ROWS, check_file, validate_file
from pipelines.nodes.merge import Merge, merge_batch

__all__ = ["BATCH_MIN_ROWS", "check_file", "validate_file"]


@dataclass(frozen=True)
class BatchAdded:
    use_case: str
    source: str
    version: VersionRecord | None
    """None when every row was already in the dataset: nothing to version. When those rows came from
    an add of this very file that a killed command left and this call completed, that version."""
    new_rows: int
    duplicates_dropped: int
    reports: list[ValidationReport]


Notify = Callable[[str], None]


def ensure_data(project: Project, notify: Notify | None = None) -> Recovery | None:
    """Finish or undo a change of ``data/`` a killed command left; restore ``data/`` when a fresh clone
    lacks it. Returns the recovery made, if any."""
    recovery = recover_interrupted_change(project, notify)
    versions = DataVersions(project)
    if not versions.is_materialised():
        versions.pull()
    return recovery


def recover_interrupted_change(project: Project, notify: Notify | None = None,
                               lock_held: bool = False) -> Recovery | None:
    """Complete or undo a change of ``data/`` that a killed command left half-made; say so in one line.

    Under the data lock: a change a live command is still making is waited for, never "recovered".
    """
    if not IntentLog(project).pending():
        return None
    with contextlib.nullcontext() if lock_held else FileLock(project.lock_file):
        recovery = DataVersions(project).recover()
    if recovery is not None:
        (notify or _report)(recovery.message())
    return recovery


def _report(message: str) -> None:
    """To the flow run's log (the console and the Prefect API) inside a run; to stderr outside."""
    try:
        get_run_logger().warning(message)
    except MissingContextError:
        print(message, file=sys.stderr)


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


@task(name="validate", cache_policy=NO_CACHE)
def validate_dataset(project: Project, use_case: UseCase,
                     frame: pd.DataFrame) -> tuple[ValidationReport, str]:
    """The dataset against its whole suite, unless these very bytes passed it before; the report,
    and what it stands for in words."""
    dataset = use_case.dataset_path(project)
    record = validation_record.find(project, use_case, dataset)
    if record is not None:
        get_run_logger().info(f"{use_case.name}: validation passed ({record.note()})")
        return validation_record.passed_report(use_case, dataset, record), record.note()
    report = validation.run_suite(project, use_case, frame, subject="merged", source=str(dataset),
                                  min_rows=use_case.min_rows)
    get_run_logger().info(report.headline())
    if report.success:
        validation_record.remember(project, use_case, dataset, report.evaluated, len(frame))
    return report, f"{report.evaluated} expectations"


@task(name="validate merged", cache_policy=NO_CACHE)
def validate_merged(project: Project, use_case: UseCase, merged: pd.DataFrame,
                    source: str) -> ValidationReport:
    """The dataset with the batch appended, the batch having passed the suite alone.

    When the dataset as it is passed its whole suite before, only the expectations that relate
    rows to one another or count them are checked: key uniqueness, the row order across the
    boundary, the number of rows. Every other one holds row by row, in each part.
    """
    dataset = use_case.dataset_path(project)
    validated = validation_record.find(project, use_case, dataset) is not None
    report = validation.run_suite(
        project, use_case, merged, subject="merged", source=source, min_rows=use_case.min_rows,
        only=(lambda item: validation.spans_rows(item, use_case)) if validated else None)
    if validated:
        report.scope = "that span rows (the others held in the validated dataset and in the batch)"
    get_run_logger().info(report.headline())
    return report


@task(name="merge", cache_policy=NO_CACHE)
def merge(project: Project, use_case: UseCase, batch: pd.DataFrame) -> Merge:
    dataset = use_case.dataset_path(project)
    current = files.read_table(dataset, use_case) if dataset.exists() else None
    return merge_batch(current, batch)


@task(name="version data", cache_policy=NO_CACHE)
def version_data(project: Project, use_case: UseCase, merged: Merge, source: Path) -> VersionRecord:
    """Append the new rows, ``dvc add``, ``dvc push``, crash-safely; on any failure restore what was there."""
    dataset = use_case.dataset_path(project)
    change = DataChange("add", [use_case.name], {use_case.name: len(merged.merged)}, source.name,
                        files={dataset: _appended(dataset, merged)}, source_sha256=sha256_of(source),
                        new_rows=len(merged.new_rows))
    return DataVersions(project).apply(change)


def _appended(dataset: Path, merged: Merge) -> Writer:
    """The dataset's new content: its old bytes as they are, then the new rows."""
    def write(stream: BinaryIO) -> None:
        if not dataset.exists():
            stream.write(merged.merged.to_csv(index=False).encode())
            return
        with dataset.open("rb") as old:
            shutil.copyfileobj(old, stream)
        stream.write(merged.new_rows.to_csv(header=False, index=False).encode())
    return write


def _version(project: Project, use_case: UseCase, merged: Merge, source: Path,
             recoveries: list[Recovery | None]) -> tuple[VersionRecord | None, int]:
    """The new version and its number of new rows.

    With every row held already, the version a recovery just completed for this very file, if any
    (a re-landed file is then announced), else None.
    """
    if not merged.new_rows.empty:
        return version_data(project, use_case, merged, source), len(merged.new_rows)
    digest = sha256_of(source)
    for recovery in recoveries:
        if (recovery is not None and recovery.completed is not None and recovery.intent.operation == "add"
                and recovery.intent.source_sha256 == digest):
            return recovery.completed, recovery.intent.new_rows
    get_run_logger().warning(f"{source.name}: every row is already in the dataset; data version unchanged")
    return None, 0


def _validate_and_merge(project: Project, use_case: UseCase, source: Path,
                        batch: pd.DataFrame) -> tuple[list[ValidationReport], Merge]:
    """The batch alone, then merged with the dataset; a failure is quarantined and raised."""
    reports = [validate(project, use_case, batch, "batch", str(source), BATCH_MIN_ROWS)]
    if reports[0].success:
        merged = merge(project, use_case, batch)
        reports.append(validate_merged(project, use_case, merged.merged, str(source)))
    failed = next((r for r in reports if not r.success), None)
    if failed:
        reason = f"rejected: {failed.headline()}"
        _reject(project, use_case, source, reason, failed)
        raise ValidationFailedError(reason, failed)
    return reports, merged


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
    recoveries = [ensure_data(project)]
    try:
        batch = read_batch(use_case, source)
    except BadInputError as exc:
        if source.is_file():
            _reject(project, use_case, source, str(exc))
        raise

    project.state_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(project.lock_file):
        # A command killed since ensure_data may have left a change half-made: merged rows must not
        # build on it.
        recoveries.append(recover_interrupted_change(project, lock_held=True))
        reports, merged = _validate_and_merge(project, use_case, source, batch)
        record, new_rows = _version(project, use_case, merged, source, recoveries)
        if record is not None:
            # The batch passed the suite whole, the merged table what spans rows: all of it.
            validation_record.remember(project, use_case, use_case.dataset_path(project),
                                       reports[0].evaluated, len(merged.merged))
    return BatchAdded(use_case.name, str(source), record, new_rows, merged.duplicates_dropped, reports)


# --- what the command line calls ------------------------------------------------------------

def add(project: Project, use_case_name: str, path: Path, notify: Notify) -> BatchAdded:
    """``mlops data add``: the ``add-batch`` flow on a Prefect API."""
    if use_case_name not in definitions.available(project):
        definitions.load(project, use_case_name)  # names the use cases there are

    def check_first() -> None:
        definitions.load(project, use_case_name)
        recover_interrupted_change(project, notify)

    # The server boots while the definition is read and an interrupted change is recovered.
    with runtime.prefect_api(runtime.DATA_MODULES, project.state_dir / "prefect-server.log",
                             notify=notify, meanwhile=check_first):
        return add_batch(use_case_name, str(path), str(project.root))


def pull(project: Project, notify: Notify | None = None) -> tuple[str, bool]:
    """Restore ``data/``; returns the data version and whether ``dvc status`` is clean."""
    recover_interrupted_change(project, notify)
    versions = DataVersions(project)
    version = versions.pull()
    return version, versions.is_clean()


def checkout(project: Project, version: str, notify: Notify | None = None) -> str:
    recover_interrupted_change(project, notify)
    project.state_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(project.lock_file):
        return DataVersions(project).checkout(version)


def history(project: Project, use_case_name: str,
            notify: Notify | None = None) -> tuple[list[VersionRecord], str | None]:
    """The data versions that changed the use case's dataset, oldest first, and the current one."""
    name = definitions.load(project, use_case_name).name
    recover_interrupted_change(project, notify)
    versions = DataVersions(project)
    return [r for r in versions.history() if name in r.use_cases], versions.current()
