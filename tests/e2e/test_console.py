"""What a failing command leaves on the terminal (one line) and in the project's log (the traceback)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from subprocess import CompletedProcess

import pytest
import yaml

from tests.faults.harness import run
from tests.integration.batches import STOCK_BATCH, STOCK_SPOILERS, write

pytestmark = [pytest.mark.slow, pytest.mark.integration]

LOG = Path(".mlops") / "logs" / "mlops.log"


@pytest.fixture(scope="module")
def root(pulled_template: Path, tmp_path_factory) -> Path:
    """One pulled project for the module: every command here fails and leaves its data as it was."""
    root = tmp_path_factory.mktemp("console") / "project"
    shutil.copytree(pulled_template, root, symlinks=True)
    return root


@pytest.fixture
def rejected_batch(tmp_path: Path) -> Path:
    spoil, _ = STOCK_SPOILERS["High below Low"]
    return write(spoil(STOCK_BATCH), tmp_path / "bad.csv")


@pytest.fixture
def good_batch(tmp_path: Path) -> Path:
    return write(STOCK_BATCH, tmp_path / "good.csv")


class LogWatch:
    """What the project's log file gained while a command ran."""

    def __init__(self, root: Path) -> None:
        self.path = root / LOG
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def added(self) -> str:
        if not self.path.exists():
            return ""
        with self.path.open(encoding="utf-8") as stream:
            stream.seek(self.start)
            return stream.read()


def mlops(root: Path, *args: str, **environment: str) -> tuple[CompletedProcess[str], str]:
    """``mlops *args``, and what it wrote to the project's log file."""
    watch = LogWatch(root)
    done = run(root, *args, **environment)
    return done, watch.added()


def assert_one_line(done: CompletedProcess[str], words: str) -> str:
    terminal = done.stdout + done.stderr
    assert done.returncode == 1, terminal
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], terminal
    assert "Traceback" not in terminal, terminal
    return errors[0]


def assert_traceback_logged(log: str, command: str, words: str) -> None:
    assert f"mlops.command - mlops {command}" in log
    assert "Traceback (most recent call last)" in log and words in log
    assert "Encountered exception during execution" in log, "the flow's own log line is there too"


def test_a_rejected_batch_is_one_line_with_its_traceback_in_the_log(root, rejected_batch):
    done, log = mlops(root, "data", "add", "-u", "stock", str(rejected_batch))
    assert_one_line(done, "High must be >= Low")
    assert "Encountered exception during execution" in done.stderr, "the flow's line stays, bare"
    assert_traceback_logged(log, "data add", "ValidationFailedError")


def test_a_file_that_breaks_the_suite_is_not_scored_in_one_line(root, rejected_batch):
    done, log = mlops(root, "predict", "-u", "stock", str(rejected_batch))
    assert_one_line(done, "nothing scored")
    assert_traceback_logged(log, "predict", "ValidationFailedError")


def test_a_missing_champion_is_one_line(root, good_batch):
    done, log = mlops(root, "predict", "-u", "stock", str(good_batch))
    assert_one_line(done, "no champion for model 'stock'")
    assert_traceback_logged(log, "predict", "RegistryError")


@pytest.fixture
def misspelled_definition(root: Path) -> Iterator[None]:
    path = root / "pipelines" / "usecases" / "stock.yaml"
    original = path.read_bytes()
    path.write_text(yaml.safe_dump(yaml.safe_load(original) | {"promotion_margn": 0.01}, sort_keys=False))
    yield
    path.write_bytes(original)


def test_a_definition_error_is_one_line_and_logged(root, misspelled_definition):
    done, log = mlops(root, "run", "-u", "stock")
    reason = "stock.yaml: unknown key 'promotion_margn' (did you mean 'promotion_margin'?)"
    assert done.returncode == 1 and done.stderr == f"error: {reason}\n"
    assert "mlops.command - mlops run -u stock" in log and "unknown key 'promotion_margn'" in log


def test_debug_shows_the_tracebacks_on_the_terminal(root, rejected_batch):
    done, log = mlops(root, "--debug", "data", "add", "-u", "stock", str(rejected_batch))
    assert done.returncode == 1, done.stderr
    assert "Traceback (most recent call last)" in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "High must be >= Low" in errors[0]
    assert "Traceback (most recent call last)" in log


def test_an_unexpected_error_is_one_line_that_points_to_its_traceback(root, good_batch):
    done, log = mlops(root, "data", "add", "-u", "stock", str(good_batch),
                      failpoints="data.add.appended=raise")
    line = assert_one_line(done, "unexpected FailpointError: failpoint data.add.appended")
    assert line.endswith(f"(traceback in {root / LOG}; run with --debug to show it)")
    assert "Traceback (most recent call last)" in log and "error: unexpected FailpointError" in log
