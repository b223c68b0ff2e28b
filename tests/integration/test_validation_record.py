"""Datasets validated once are not validated whole again: real Great Expectations, Prefect and DVC."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.config import definitions
from pipelines.config.errors import ValidationFailedError
from pipelines.flows.cycle import _read_validate_version
from pipelines.flows.data import add_batch
from tests.integration.batches import STOCK_BATCH, marketing_batch, write

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

UNCHANGED = "unchanged since validated"


def validation_note(project, name: str = "marketing") -> str:
    """What `mlops run` says of the dataset's validation."""
    return _read_validate_version(project, definitions.load(project, name))[2]


def records(project) -> list:
    folder = project.state_dir / "validated"
    return sorted(folder.glob("*.json")) if folder.exists() else []


def test_unchanged_data_is_not_validated_again(project):
    first = validation_note(project)
    assert first == "validation passed (262 expectations)"
    again = validation_note(project)
    assert again.startswith("validation passed (262 expectations; unchanged since validated ")


@pytest.mark.parametrize("edit", ["suite", "definition", "data"])
def test_a_change_means_a_whole_validation(project, edit):
    validation_note(project)
    if edit == "suite":
        path = project.expectations_dir / "marketing.yaml"
        path.write_text(path.read_text() + "\n# reviewed\n")
    elif edit == "definition":
        path = project.usecases_dir / "marketing.yaml"
        path.write_text(path.read_text().replace("min_rows: 1000", "min_rows: 900"))
    else:
        dataset = project.data_dir / "marketing.csv"
        dataset.write_text("".join(dataset.read_text().splitlines(keepends=True)[:-1]))
    assert UNCHANGED not in validation_note(project)
    assert UNCHANGED in validation_note(project)


def test_a_corrupt_record_means_a_whole_validation(project):
    validation_note(project)
    for record in records(project):
        record.write_text('{"use_case": "marketing", "rows": ')
    assert UNCHANGED not in validation_note(project)
    assert UNCHANGED in validation_note(project)


def test_an_added_batch_is_checked_whole_and_the_merged_table_where_rows_meet(project, tmp_path):
    validation_note(project)
    result = add_batch("marketing", str(write(marketing_batch(project.root), tmp_path / "m.csv")),
                       str(project.root))
    batch, merged = result.reports
    assert batch.evaluated == 262
    assert merged.evaluated < 10 and "span rows" in merged.headline()
    # The merged table is recorded as validated: the next cycle does not validate it again.
    assert UNCHANGED in validation_note(project)


def test_a_key_already_held_is_rejected_by_the_merged_check(project, tmp_path):
    validation_note(project)
    held = pd.read_csv(project.data_dir / "marketing.csv", dtype={"customer_id": str}).tail(1)
    clash = held.assign(Purchase="Yes" if held["Purchase"].iloc[0] == "No" else "No")
    before = (project.data_dir / "marketing.csv").read_bytes()
    with pytest.raises(ValidationFailedError, match=r"merged .*customer_id must be unique") as caught:
        add_batch("marketing", str(write(clash, tmp_path / "clash.csv")), str(project.root))
    assert caught.value.report.evaluated < 10
    assert (project.data_dir / "marketing.csv").read_bytes() == before


def test_rows_older_than_the_held_data_are_rejected_by_the_merged_check(project, tmp_path):
    validation_note(project, "stock")
    old = STOCK_BATCH.assign(Date=["2001-01-06", "2001-01-07", "2001-01-06"])
    with pytest.raises(ValidationFailedError, match="Date must increase within each Ticker") as caught:
        add_batch("stock", str(write(old, tmp_path / "old.csv")), str(project.root))
    assert caught.value.report.evaluated < 10
