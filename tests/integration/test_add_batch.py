"""`add_batch` as a real Prefect flow, versioning with real DVC in a real git repository."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.adapters.dvc import DataVersions
from pipelines.adapters.intent import IntentLog
from pipelines.config.errors import BadInputError, UseCaseError, ValidationFailedError
from pipelines.flows.data import add_batch
from tests.conftest import git
from tests.faults import harness
from tests.integration.batches import (
    MARKETING_SPOILERS,
    STOCK_BATCH,
    STOCK_SPOILERS,
    marketing_batch,
    write,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def fingerprint(project) -> dict[str, str]:
    """Hashes of everything a rejected batch must leave alone: data/, data.dvc, the remote."""
    roots = [project.data_dir, project.root / ".dvc" / "storage"]
    files = [project.dvc_file] + [
        p for root in roots if root.exists() for p in sorted(root.rglob("*"))
        if p.is_file() and "quarantine" not in p.parts and "incoming" not in p.parts
    ]
    return {str(p.relative_to(project.root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files}


def quarantined(project) -> list[Path]:
    folder = project.quarantine_dir
    return sorted(p for p in folder.iterdir() if not p.name.endswith((".json", ".txt"))) \
        if folder.exists() else []


def test_valid_batch_becomes_a_new_pushed_version(project, tmp_path):
    versions = DataVersions(project)
    before = versions.current()
    result = add_batch("stock", str(write(STOCK_BATCH, tmp_path / "bars.csv")), str(project.root))

    assert result.version is not None and result.version.version != before
    assert result.version.version == versions.current()
    assert result.new_rows == 3 and result.version.rows["stock"] == 12154 + 3
    stock = pd.read_csv(project.data_dir / "stock.csv")
    assert stock.tail(3)["Date"].tolist() == STOCK_BATCH["Date"].tolist()
    assert versions.is_clean()
    # pushed: the default remote holds the new directory listing
    md5 = result.version.version
    assert (project.root / ".dvc" / "storage" / "files" / "md5" / md5[:2] / md5[2:]).is_file()
    assert [r.source for r in versions.history()][-1] == "bars.csv"
    assert "data.dvc" in git(project.root, "diff", "--cached", "--name-only")  # autostaged


def test_the_dataset_is_replaced_whole_never_written_in_place(project, tmp_path):
    # A reader that opened the dataset before the add reads the old bytes to the end, whole.
    dataset = project.data_dir / "stock.csv"
    old = dataset.read_bytes()
    with dataset.open("rb") as reader:
        add_batch("stock", str(write(STOCK_BATCH, tmp_path / "bars.csv")), str(project.root))
        assert reader.read() == old
    assert dataset.read_bytes().startswith(old) and len(dataset.read_bytes()) > len(old)
    assert not IntentLog(project).pending()


def test_resubmitting_the_same_batch_changes_nothing(project, tmp_path):
    path = write(STOCK_BATCH, tmp_path / "bars.csv")
    first = add_batch("stock", str(path), str(project.root))
    again = add_batch("stock", str(path), str(project.root))
    assert again.version is None and again.duplicates_dropped == 3
    assert DataVersions(project).current() == first.version.version


def test_marketing_batch(project, tmp_path):
    result = add_batch("marketing", str(write(marketing_batch(project.root), tmp_path / "m.csv")),
                       str(project.root))
    assert result.version.rows["marketing"] == 5822 + 3


def test_conflict_with_existing_rows_is_rejected(project, tmp_path):
    existing = pd.read_csv(project.data_dir / "stock.csv").tail(1).assign(Close=1.0, Low=0.5)
    before = fingerprint(project)
    with pytest.raises(ValidationFailedError, match=r"merged .*\(Ticker, Date\) must be unique"):
        add_batch("stock", str(write(existing, tmp_path / "clash.csv")), str(project.root))
    assert fingerprint(project) == before


def test_backfill_older_than_the_dataset_is_rejected(project, tmp_path):
    # A weekend: no bars exist, so only the order check can object.
    old = STOCK_BATCH.assign(Date=["2001-01-06", "2001-01-07", "2001-01-06"])
    with pytest.raises(ValidationFailedError, match="Date must increase within each Ticker"):
        add_batch("stock", str(write(old, tmp_path / "old.csv")), str(project.root))


BAD_FILES = {
    "empty file": (b"", "the file is empty"),
    "header without rows": (b"Ticker,Date,Open,High,Low,Close,Volume,Adj Close\n",
                            "header but no data rows"),
    "binary bytes": (bytes(range(256)) * 4, "not a CSV file"),
    "wrong delimiter": (STOCK_BATCH.to_csv(index=False, sep=";").encode(), "separated by ';'"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_unreadable_file_changes_nothing(project, tmp_path, case):
    content, message = BAD_FILES[case]
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    before = fingerprint(project)
    with pytest.raises(BadInputError, match=message):
        add_batch("stock", str(path), str(project.root))
    assert fingerprint(project) == before
    assert [p.name.split("-", 2)[-1] for p in quarantined(project)] == ["bad.csv"]


@pytest.mark.parametrize("spoiler", list(STOCK_SPOILERS))
def test_invalid_stock_batch_changes_nothing(project, tmp_path, spoiler):
    spoil, expected = STOCK_SPOILERS[spoiler]
    path = write(spoil(STOCK_BATCH), tmp_path / "bad.csv")
    before = fingerprint(project)
    with pytest.raises(ValidationFailedError) as caught:
        add_batch("stock", str(path), str(project.root))
    assert expected in caught.value.report.render()
    assert "\n" not in str(caught.value)
    assert fingerprint(project) == before
    kept = quarantined(project)
    assert len(kept) == 1 and kept[0].read_bytes() == path.read_bytes()
    report = kept[0].with_name(kept[0].name + ".report.txt").read_text()
    assert expected in report


@pytest.mark.parametrize("spoiler", list(MARKETING_SPOILERS))
def test_invalid_marketing_batch_changes_nothing(project, tmp_path, spoiler):
    spoil, expected = MARKETING_SPOILERS[spoiler]
    path = write(spoil(marketing_batch(project.root)), tmp_path / "bad.csv")
    before = fingerprint(project)
    with pytest.raises(ValidationFailedError):
        add_batch("marketing", str(path), str(project.root))
    assert fingerprint(project) == before
    assert len(quarantined(project)) == 1


def test_missing_file_and_unknown_use_case(project, tmp_path):
    before = fingerprint(project)
    with pytest.raises(BadInputError, match="file not found"):
        add_batch("stock", str(tmp_path / "nope.csv"), str(project.root))
    with pytest.raises(UseCaseError, match="unknown use case 'weather'"):
        add_batch("weather", str(write(STOCK_BATCH, tmp_path / "b.csv")), str(project.root))
    assert fingerprint(project) == before
    assert quarantined(project) == []


def test_failed_push_restores_data_and_pointer(project, tmp_path):
    # Fault injected on purpose: the default remote points at a path that cannot be created.
    config = project.root / ".dvc" / "config"
    config.write_text(config.read_text().replace("url = storage", "url = /proc/no-such-remote"))
    before = fingerprint(project)
    from pipelines.config.errors import VersioningError

    with pytest.raises(VersioningError, match="dvc push"):
        add_batch("stock", str(write(STOCK_BATCH, tmp_path / "bars.csv")), str(project.root))
    assert fingerprint(project) == before
    assert not IntentLog(project).pending()


@pytest.mark.slow
def test_two_concurrent_adds_both_land_one_after_the_other(project, tmp_path, prefect_server):
    apples = write(STOCK_BATCH[STOCK_BATCH.Ticker == "AAPL"], tmp_path / "apples.csv")
    ibm = write(STOCK_BATCH[STOCK_BATCH.Ticker == "IBM"], tmp_path / "ibm.csv")
    try:
        processes = [harness.start(project.root, "data", "add", "--use-case", "stock", str(path),
                                   PREFECT_API_URL=prefect_server) for path in (apples, ibm)]
        errors = [process.communicate(timeout=300)[1] for process in processes]
        assert [process.returncode for process in processes] == [0, 0], errors
        versions = DataVersions(project)
        ledger = versions.history()
        assert sorted(r.source for r in ledger[-2:]) == ["apples.csv", "ibm.csv"]
        assert ledger[-1].version == versions.current() and ledger[-1].rows["stock"] == 12154 + 3
        assert versions.is_clean()
        done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json", "-c", "-r", "local",
                               "data.dvc"], cwd=project.root, capture_output=True, text=True, check=True)
        assert done.stdout.strip() == "{}"  # the default remote holds the final version
        stock = pd.read_csv(project.data_dir / "stock.csv")
        assert len(stock.merge(STOCK_BATCH[["Ticker", "Date"]], on=["Ticker", "Date"])) == 3
    finally:
        harness.kill_leftovers(project.root)
