"""Seconds spent by the data layer on the sample data.

    .venv/bin/python benchmarks/data_layer.py

Copies the project's data files into a temporary git repository, then times: importing Great
Expectations, validating each full dataset, and `add_batch` (a Prefect flow: validate batch and
merged dataset, append, dvc add, dvc push) for a 3-row stock batch, with Prefect's local server
already started so its start-up is reported apart.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "true",
                   "DVC_NO_ANALYTICS": "true", "PREFECT_LOGGING_LEVEL": "WARNING"})

def timed(label: str, action):
    start = time.perf_counter()
    result = action()
    print(f"{label:<48} {time.perf_counter() - start:7.2f} s")
    return result


def main() -> None:
    from tests.conftest import copy_project_files

    root = copy_project_files(Path(tempfile.mkdtemp()) / "project")

    from pipelines.adapters.dvc import DataVersions
    from pipelines.adapters.files import read_table
    from pipelines.adapters.great_expectations import run_suite
    from pipelines.config import definitions
    from pipelines.config.project import Project

    project = Project(root)
    timed("dvc pull (sample remote)", lambda: DataVersions(project).pull())
    timed("import great_expectations", lambda: __import__("great_expectations"))
    for use_case in definitions.resolve(project, "all"):
        frame = read_table(use_case.dataset_path(project), use_case)
        for attempt in ("first", "again"):
            timed(f"validate {use_case.name} ({len(frame)} rows, {attempt})",
                  lambda u=use_case, f=frame: run_suite(project, u, f, subject="merged",
                                                         source="dataset", min_rows=u.min_rows))

    from prefect.testing.utilities import prefect_test_harness

    from pipelines.flows.data import add_batch
    from tests.integration.batches import STOCK_BATCH, write

    harness = prefect_test_harness(120)
    timed("start Prefect's local server", harness.__enter__)
    try:
        batch = write(STOCK_BATCH, root.parent / "batch.csv")
        timed("add_batch stock, 3 rows (flow)", lambda: add_batch("stock", str(batch), str(root)))
    finally:
        harness.__exit__(None, None, None)
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
