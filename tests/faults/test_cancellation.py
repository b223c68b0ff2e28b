"""SIGTERM and Ctrl-C stop a training cycle within seconds, even while a fit cannot be interrupted.

Fits stop at their next fold or epoch once a stop is requested. The failpoint makes a candidate's
fit sleep for two minutes in its training thread instead: like a long native fit, it never looks at
the stop request, so only the command's own deadline ends it.
"""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from models import evaluation, interrupt
from models.neural import MLPClassifier
from models.splits import stratified
from tests.faults.harness import kill_leftovers, start, wait_for_marker, wait_until_no_processes

SLOW = [pytest.mark.slow, pytest.mark.integration]
STUCK_FIT = "cycle.train_candidate=sleep:120"
EXIT_WITHIN = 10.0


def stop_during_training(root, markers, signum: int) -> tuple[subprocess.Popen[str], float, str]:
    """A cycle sent ``signum`` while its fit is stuck; the process, seconds to its end, its stderr."""
    process = start(root, "run", "--use-case", "marketing", "--candidates", "linear",
                    failpoints=STUCK_FIT, markers=markers)
    wait_for_marker(markers, "cycle.train_candidate", process)
    sent = time.monotonic()
    process.send_signal(signum)
    try:
        _, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
        name = signal.Signals(signum).name
        raise AssertionError(f"mlops run was still running 60 s after {name}:\n{err}") from None
    return process, time.monotonic() - sent, err


def runs_by_status(root) -> dict[str, list[str]]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    experiments = [e.experiment_id for e in client.search_experiments()]
    statuses: dict[str, list[str]] = {}
    for run in client.search_runs(experiments):
        statuses.setdefault(run.info.status, []).append(run.data.tags.get("run_role", run.info.run_name))
    return statuses


@pytest.fixture
def stop_afterwards_forgotten():
    yield
    interrupt.reset()


class StopRequestedDuringFit(DummyClassifier):
    """A fit during which the command is asked to stop, as a signal arriving mid-fold would."""

    fits = 0

    def fit(self, X, y, sample_weight=None):
        type(self).fits += 1
        interrupt.request()
        return super().fit(X, y, sample_weight)


def test_cross_validation_stops_before_the_next_fold(stop_afterwards_forgotten):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"key": [f"k{i}" for i in range(200)], "x": rng.normal(size=200)})
    y = rng.integers(0, 2, size=200)
    plan = stratified(y, frame[["key"]], n_splits=4)
    with pytest.raises(interrupt.Stopped):
        evaluation.evaluate("stopped", StopRequestedDuringFit, frame[["x"]], y, plan, "classification",
                            ["roc_auc"])
    assert StopRequestedDuringFit.fits == 1


def test_a_network_stops_before_its_next_epoch(stop_afterwards_forgotten):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 4)), rng.integers(0, 2, size=100)
    interrupt.request()
    with pytest.raises(interrupt.Stopped):
        MLPClassifier(hidden_sizes=(8,), max_epochs=50, device="cpu").fit(X, y)


@pytest.mark.parametrize(("signum", "status", "name"), [
    pytest.param(signal.SIGTERM, 143, "SIGTERM", marks=SLOW),
])
def test_a_signal_stops_a_cycle_with_a_stuck_fit_within_seconds(project, tmp_path, signum, status, name):
    root = project.root
    try:
        process, seconds, err = stop_during_training(root, tmp_path / "markers", signum)
        left = wait_until_no_processes(root, timeout=5)
    finally:
        kill_leftovers(root)
    assert seconds < EXIT_WITHIN, f"exited {seconds:.1f} s after {name}"
    assert process.returncode == status, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"interrupted ({name})" in errors[0], err
    assert left == []
    statuses = runs_by_status(root)
    assert "RUNNING" not in statuses, statuses
    assert "cycle" in statuses.get("KILLED", []), statuses
