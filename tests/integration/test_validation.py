"""Every bad-input item against the real Great Expectations suites."""

from __future__ import annotations

import pytest

from pipelines.adapters.great_expectations import run_suite
from pipelines.config import definitions as usecase
from pipelines.flows.data import validate_file
from tests.integration.batches import (
    MARKETING_SPOILERS,
    STOCK_BATCH,
    STOCK_SPOILERS,
    marketing_batch,
    write,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared_project(pulled_template):
    from pipelines.config.project import Project

    return Project(pulled_template)


def test_valid_batches_pass(shared_project, tmp_path):
    for name, frame in [("stock", STOCK_BATCH), ("marketing", marketing_batch(shared_project.root))]:
        report = validate_file(shared_project, usecase.load(shared_project, name),
                               write(frame, tmp_path / f"{name}.csv"))
        assert report.success, report.render()


def test_shipped_datasets_pass_with_their_minimum_rows(shared_project):
    from pipelines.adapters.files import read_table

    for use_case in usecase.resolve(shared_project, "all"):
        frame = read_table(use_case.dataset_path(shared_project), use_case)
        report = run_suite(shared_project, use_case, frame, subject="merged", source="dataset",
                           min_rows=use_case.min_rows)
        assert report.success, report.render()
        assert report.docs_path and report.docs_path.endswith("index.html")


@pytest.mark.parametrize("spoiler", list(STOCK_SPOILERS))
def test_stock_bad_input_is_named(shared_project, tmp_path, spoiler):
    spoil, expected = STOCK_SPOILERS[spoiler]
    report = validate_file(shared_project, usecase.load(shared_project, "stock"),
                           write(spoil(STOCK_BATCH), tmp_path / "bad.csv"))
    assert not report.success
    assert expected in report.render(), report.render()
    assert "\n" not in report.headline()


@pytest.mark.parametrize("spoiler", list(MARKETING_SPOILERS))
def test_marketing_bad_input_is_named(shared_project, tmp_path, spoiler):
    spoil, expected = MARKETING_SPOILERS[spoiler]
    batch = spoil(marketing_batch(shared_project.root))
    report = validate_file(shared_project, usecase.load(shared_project, "marketing"),
                           write(batch, tmp_path / "bad.csv"))
    assert not report.success
    assert expected in report.render(), report.render()


def test_failure_report_shows_counts_and_examples(shared_project, tmp_path):
    spoil, _ = STOCK_SPOILERS["High below Low"]
    report = validate_file(shared_project, usecase.load(shared_project, "stock"),
                           write(spoil(STOCK_BATCH), tmp_path / "bad.csv"))
    failure = next(f for f in report.failures if f.description == "High must be >= Low")
    assert failure.unexpected_count == 1
    assert failure.columns == ["High", "Low"]
    assert failure.examples
