"""``mlops data validate``: one file against its use case's suite, without Prefect.

Kept apart from the data flows so that a quick check does not wait for Prefect to load.
"""

from __future__ import annotations

from pathlib import Path

from pipelines.adapters import files
from pipelines.adapters import great_expectations as validation
from pipelines.adapters.great_expectations import ValidationReport
from pipelines.config import definitions
from pipelines.config.project import Project
from pipelines.config.usecase import UseCase

BATCH_MIN_ROWS = 1
"""The fewest rows a batch may have; the whole dataset needs the use case's ``min_rows``."""


def validate_file(project: Project, use_case: UseCase, path: Path, docs: bool = False) -> ValidationReport:
    """The file alone against the use case's suite; ``docs`` updates the Data Docs even if it passes."""
    frame = files.read_table(path, use_case)
    return validation.run_suite(project, use_case, frame, subject="batch", source=str(path),
                                min_rows=BATCH_MIN_ROWS, docs=docs)


def check_file(project: Project, use_case_name: str, path: Path, docs: bool = False) -> ValidationReport:
    return validate_file(project, definitions.load(project, use_case_name), path, docs)
