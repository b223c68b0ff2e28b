"""Real `mlops` commands killed (SIGKILL) between the steps of a data change, and the command after.

Right after the kill, ``data/`` and ``data.dvc`` hold the old version or the new one, whole; the next
command that touches data completes or undoes the change, says so in one line, and leaves DVC clean,
the ledger naming the current version, and the default remote holding it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from pipelines.adapters.dvc import DataVersions
from pipelines.adapters.intent import IntentLog
from pipelines.flows.data import add_batch
from tests.faults import harness
from tests.integration.batches import STOCK_BATCH, write

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SAMPLE_STOCK_ROWS = 12154
RECOVERED = "recovered an interrupted"

# stage killed -> (data/stock.csv, data.dvc, ledger names the new version, remote holds it),
# then the command run next and what it does with the change.
ADD_AGAIN = ("data", "add", "--use-case", "stock", "{batch}")
RIGHT_AFTER = {
    "intent_written": (("old", "old", False, False), ADD_AGAIN, "rolled back"),
    "appended": (("new", "old", False, False), ADD_AGAIN, "rolled back"),
    "dvc_added": (("new", "new", False, False), ("data", "versions", "--use-case", "stock"), "completed"),
    "ledger_written": (("new", "new", True, False), ("data", "pull"), "completed"),
    "pushed": (("new", "new", True, True), ("data", "pull"), "completed"),
}
# Where the next command first meets an unreachable default remote: its completion cannot push.
REMOTE_DOWN_FIRST = "ledger_written"


class Bytes:
    """The old and the new content of the stock dataset, and the data version before the add."""

    def __init__(self, project, batch: pd.DataFrame) -> None:
        self.old = (project.data_dir / "stock.csv").read_bytes()
        self.new = self.old + batch.to_csv(header=False, index=False).encode()
        self.version = DataVersions(project).current()
        self.pointer = project.dvc_file.read_bytes()

    def name(self, content: bytes) -> str:
        return {self.old: "old", self.new: "new"}.get(content, "neither")


def missing_objects(project, store: Path) -> list[str]:
    """The objects of the version ``data.dvc`` names that ``store`` (the cache or a remote) lacks."""
    version = DataVersions(project).current()

    def path(md5: str) -> Path:
        return store / "files" / "md5" / md5[:2] / md5[2:]

    if not path(version).is_file():
        return [version]
    listing = json.loads(path(version).read_text())
    return [entry["relpath"] for entry in listing if not path(entry["md5"]).is_file()]


def cache_of(project) -> Path:
    return project.root / ".dvc" / "cache"


def remote_of(project) -> Path:
    return project.root / ".dvc" / "storage"


def state(project, before: Bytes) -> tuple[str, str, bool, bool]:
    versions = DataVersions(project)
    current = versions.current()
    history = versions.history()
    return (before.name((project.data_dir / "stock.csv").read_bytes()),
            "old" if current == before.version else "new",
            current != before.version and history[-1].version == current,
            not missing_objects(project, remote_of(project)))


def recovery_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if RECOVERED in line]


def assert_settled(project, source: str, batch: pd.DataFrame) -> None:
    """One whole version: DVC clean, in the ledger under ``source``, pushed, the batch's rows once."""
    versions = DataVersions(project)
    assert versions.is_clean()
    assert not IntentLog(project).pending()
    last = versions.history()[-1]
    assert (last.version, last.source) == (versions.current(), source)
    assert missing_objects(project, remote_of(project)) == []
    stock = pd.read_csv(project.data_dir / "stock.csv")
    assert len(stock) == SAMPLE_STOCK_ROWS + len(batch) == last.rows["stock"]
    keys = stock.merge(batch[["Ticker", "Date"]], on=["Ticker", "Date"])
    assert len(keys) == len(batch)


def mlops(project, api: str, *args: str, failpoints: str = "") -> subprocess.CompletedProcess[str]:
    # The session's Prefect server rather than one temporary server per command: the same flows, faster.
    return harness.run(project.root, *args, failpoints=failpoints, PREFECT_API_URL=api)


@pytest.mark.parametrize("stage", list(RIGHT_AFTER))
def test_a_killed_add_leaves_a_whole_version_that_the_next_command_settles(project, tmp_path,
                                                                          prefect_server, stage):
    expected_state, next_command, outcome = RIGHT_AFTER[stage]
    batch = write(STOCK_BATCH, tmp_path / "bars.csv")
    before = Bytes(project, STOCK_BATCH)
    try:
        killed = mlops(project, prefect_server, "data", "add", "--use-case", "stock", str(batch),
                       failpoints=f"data.add.{stage}=kill")
        assert killed.returncode == -9, killed.stderr
        assert state(project, before) == expected_state
        assert missing_objects(project, cache_of(project)) == []
        if expected_state[1] == "old":
            assert project.dvc_file.read_bytes() == before.pointer
        assert IntentLog(project).read().stage == stage

        if stage == REMOTE_DOWN_FIRST:
            assert_a_failed_push_keeps_the_intent(project, prefect_server)
        done = mlops(project, prefect_server, *(arg.format(batch=batch) for arg in next_command))
        assert done.returncode == 0, done.stderr
        lines = recovery_lines(done)
        assert len(lines) == 1 and outcome in lines[0] and "bars.csv (stock)" in lines[0], done.stderr
        assert_settled(project, "bars.csv", STOCK_BATCH)
        assert (project.data_dir / "stock.csv").read_bytes() == before.new
    finally:
        harness.kill_leftovers(project.root)


def assert_a_failed_push_keeps_the_intent(project, api: str) -> None:
    """With the remote unreachable the completion fails in one line and keeps the record for later."""
    config = project.root / ".dvc" / "config"
    reachable = config.read_text()
    config.write_text(reachable.replace("url = storage", "url = /proc/no-such-remote"))
    try:
        failed = mlops(project, api, "data", "pull")
    finally:
        config.write_text(reachable)
    assert failed.returncode == 1
    errors = [line for line in failed.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: an interrupted data add of bars.csv"), errors
    assert "dvc push" in errors[0]
    assert IntentLog(project).read().stage == "ledger_written"


# The product's own versioning step, run alone and killed once `dvc add` is done.
KILLED_VERSIONING = """
import sys
from pathlib import Path

from pipelines.adapters import files
from pipelines.config import definitions
from pipelines.config.project import Project
from pipelines.flows.data import version_data
from pipelines.nodes.merge import merge_batch

project, batch = Project(Path(sys.argv[1])), Path(sys.argv[2])
stock = definitions.load(project, "stock")
merged = merge_batch(files.read_table(stock.dataset_path(project), stock), files.read_table(batch, stock))
version_data.fn(project, stock, merged, batch)
"""


def test_a_file_landed_again_after_a_completed_crash_is_reported_as_accepted(project, tmp_path,
                                                                          prefect_server):
    batch = write(STOCK_BATCH, tmp_path / "bars.csv")
    killed = subprocess.run([sys.executable, "-c", KILLED_VERSIONING, str(project.root), str(batch)],
                            env=harness.environment("data.add.dvc_added=kill"), capture_output=True,
                            text=True, timeout=120, check=False)
    assert killed.returncode == -9, killed.stderr
    # add_batch is what the landing zone's land-file runs: the version is this file's, so it is announced.
    again = add_batch("stock", str(batch), str(project.root))
    assert again.version is not None and again.version.version == DataVersions(project).current()
    assert again.new_rows == len(STOCK_BATCH)
    assert_settled(project, "bars.csv", STOCK_BATCH)


def test_a_run_killed_while_versioning_edited_data_is_completed_by_the_next_command(project, prefect_server):
    extra = pd.DataFrame({"Ticker": ["IBM"], "Date": ["2013-03-04"], "Open": [200.0], "High": [203.0],
                          "Low": [199.0], "Close": [202.5], "Volume": [3000000], "Adj Close": [202.5]})
    with (project.data_dir / "stock.csv").open("a", newline="") as stream:
        extra.to_csv(stream, header=False, index=False)
    try:
        killed = mlops(project, prefect_server, "run", "--use-case", "stock", "--candidates", "linear",
                       failpoints="data.record.dvc_added=kill")
        assert killed.returncode == -9, killed.stderr[-2000:]

        done = mlops(project, prefect_server, "data", "versions", "--use-case", "stock")
        assert done.returncode == 0, done.stderr
        lines = recovery_lines(done)
        assert len(lines) == 1 and "by mlops run (stock): completed as data version" in lines[0], done.stderr
        assert_settled(project, "mlops run", extra)
        assert done.stdout.splitlines()[-1].endswith("(current)")
    finally:
        harness.kill_leftovers(project.root)

