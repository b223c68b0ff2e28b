"""Datasets that passed their whole suite, remembered so that unchanged data is not validated again.

A record is addressed by its content: the digest of the dataset's bytes, of the suite file, of the
use case's definition file (its ``min_rows``, key and row order) and of the code that validates.
A record found therefore means that these very bytes passed this very suite; a changed byte
anywhere means another address, hence no record and a whole validation. A record that cannot be
read is treated as absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from pipelines.adapters.great_expectations import ValidationReport
from pipelines.adapters.intent import replace_file, sha256_of
from pipelines.config.project import Project
from pipelines.config.usecase import UseCase

# Bumped when what a whole validation checks changes without the suite or definition changing.
RECORD_FORMAT = 1


@dataclass(frozen=True)
class ValidationRecord:
    use_case: str
    rows: int
    evaluated: int
    """Expectations the dataset passed."""
    validated_at: str

    def note(self) -> str:
        return f"{self.evaluated} expectations; unchanged since validated {self.validated_at}"


def _folder(project: Project) -> Path:
    return project.state_dir / "validated"


def _address(project: Project, use_case: UseCase, dataset: Path) -> str:
    try:
        validator = metadata.version("great_expectations")
    except metadata.PackageNotFoundError:
        validator = "unknown"
    parts = [str(RECORD_FORMAT), validator, use_case.name, sha256_of(dataset),
             sha256_of(use_case.expectations_path(project)),
             sha256_of(project.usecases_dir / use_case.file_name)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def find(project: Project, use_case: UseCase, dataset: Path) -> ValidationRecord | None:
    """The record of ``dataset`` as it is now having passed the use case's suite, if there is one."""
    try:
        path = _folder(project) / f"{_address(project, use_case, dataset)}.json"
        record = ValidationRecord(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if record.use_case != use_case.name or not isinstance(record.evaluated, int):
        return None
    return record


def remember(project: Project, use_case: UseCase, dataset: Path, evaluated: int, rows: int) -> None:
    """Record that ``dataset``, as it is now, passed all ``evaluated`` expectations of its suite.

    Written whole or not at all; a record that cannot be written costs a whole validation next
    time, nothing else.
    """
    record = ValidationRecord(use_case.name, rows, evaluated,
                              datetime.now(UTC).isoformat(timespec="seconds"))
    folder = _folder(project)
    text = json.dumps(asdict(record), indent=2).encode()
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        replace_file(folder / f"{_address(project, use_case, dataset)}.json",
                     lambda stream: stream.write(text), folder)


def passed_report(use_case: UseCase, dataset: Path, record: ValidationRecord) -> ValidationReport:
    """The report of a whole validation that the record stands for."""
    return ValidationReport(use_case=use_case.name, subject="merged", source=str(dataset),
                            rows=record.rows, evaluated=record.evaluated, failures=[],
                            checked_at=record.validated_at)
