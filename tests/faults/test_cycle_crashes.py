"""Training cycles killed at every stage, run side by side, and against a store that is down.

Each cycle is a real `mlops run` process; SIGKILL comes from a failpoint at the named stage. The
next cycle must leave no run RUNNING, no decision pending, and aliases, promotion tags and the
champion history in agreement.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.faults import harness

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CYCLE = ("run", "--use-case", "marketing", "--candidates", "linear")
MODEL = "marketing"

# Stage killed, in an order that reaches each: the first cycle to get past registering promotes
# (first champion); every later one trains the same model again and keeps the champion.
KILLED_STAGES = ["cycle.registered", "cycle.reported", "cycle.champion_moved", "cycle.decided"]


def client(root: Path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def runs(root: Path) -> list:
    mlflow = client(root)
    experiment = mlflow.get_experiment_by_name(MODEL)
    return [] if experiment is None else mlflow.search_runs([experiment.experiment_id], max_results=500)


def versions(root: Path) -> dict[str, dict[str, str]]:
    return {str(v.version): v.tags for v in client(root).search_model_versions(f"name='{MODEL}'")}


def champion(root: Path) -> str | None:
    with contextlib.suppress(Exception):
        return str(client(root).get_model_version_by_alias(MODEL, "champion").version)
    return None


def assert_registry_agrees(root: Path) -> None:
    """No pending decision; the champion's version says promoted; the history ends with it."""
    found = versions(root)
    decisions = {number: tags.get("promotion.decision") for number, tags in found.items()}
    assert "pending" not in decisions.values(), decisions
    holder = champion(root)
    promoted = {number for number, decision in decisions.items() if decision == "promoted"}
    assert holder in promoted, (holder, decisions)
    history = client(root).get_registered_model(MODEL).tags.get("champion_history", "")
    assert history.split(",")[-1] == holder, history


def test_a_cycle_killed_at_any_stage_is_put_right_by_the_next(project, record_property):
    root = project.root
    table = []
    try:
        for stage in KILLED_STAGES:
            killed = harness.run(root, *CYCLE, failpoints=f"{stage}=kill")
            assert killed.returncode == -9, f"{stage}: {killed.stderr[-2000:]}"
            assert harness.wait_until_no_processes(root) == [], f"{stage}: a process outlived the command"
            running = [r.info.run_id for r in runs(root) if r.info.status == "RUNNING"]
            assert running, f"{stage}: the killed cycle left no run open to close"
            decisions = [tags.get("promotion.decision") for tags in versions(root).values()]
            table.append((stage, f"{len(running)} run(s) RUNNING, champion {champion(root)}, "
                                 f"decisions {decisions}"))
        finished = harness.run(root, *CYCLE)
        assert finished.returncode == 0, finished.stderr[-3000:]
    finally:
        harness.kill_leftovers(root)
    every = runs(root)
    assert not [r for r in every if r.info.status == "RUNNING"]
    killed_runs = [r for r in every if r.info.status == "KILLED"]
    assert killed_runs and all("found_dead" in r.data.tags for r in killed_runs)
    assert_registry_agrees(root)
    # The version whose promotion was cut short after the alias moved is the champion.
    assert champion(root) == "3" and versions(root)["2"]["promotion.decision"] == "not carried out"
    record_property("states", table)
    for stage, state in table:
        print(f"{stage}: {state}")


def test_two_cycles_at_once_decide_one_after_the_other(project):
    root = project.root
    try:
        first, second = (harness.start(root, *CYCLE) for _ in range(2))
        results = [(p.wait(timeout=300), *p.communicate()) for p in (first, second)]
    finally:
        harness.kill_leftovers(root)
    for code, _, err in results:
        assert code == 0, err[-3000:]
    found = versions(root)
    decisions = sorted(tags["promotion.decision"] for tags in found.values())
    assert decisions == ["kept champion", "promoted"], found
    kept = next(tags for tags in found.values() if tags["promotion.decision"] == "kept champion")
    # The second decision was taken against the champion the first set, not against "no champion".
    assert kept["promotion.champion_version"] == champion(root)
    assert client(root).get_registered_model(MODEL).tags["champion_history"] == champion(root)


def _free_port() -> int:
    from pipelines.adapters.prefect_server import free_port

    return free_port()


def test_an_unreachable_tracking_server_is_one_line_and_touches_no_data(project):
    root = project.root
    pointer = project.dvc_file.read_bytes()
    uri = f"http://127.0.0.1:{_free_port()}"
    started = time.monotonic()
    failed = harness.run(root, *CYCLE, MLFLOW_TRACKING_URI=uri, MLOPS_SERVICE_TIMEOUT="3")
    elapsed = time.monotonic() - started
    harness.kill_leftovers(root)
    assert failed.returncode == 3, failed.stderr[-3000:]
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"MLflow at {uri} is unreachable" in errors[0], failed.stderr[-3000:]
    assert "Traceback" not in failed.stdout + failed.stderr
    assert elapsed < 60
    assert project.dvc_file.read_bytes() == pointer


@contextlib.contextmanager
def read_only(folder: Path):
    """``folder`` remounted read-only (needs the rights to mount, as in CI's container)."""
    done = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_read_only_store_is_one_line_and_touches_no_data(project, tmp_path):
    root = project.root
    store = tmp_path / "store"
    store.mkdir()
    uri = f"sqlite:///{store / 'mlflow.db'}"
    made = harness.run(root, "models", "list", MLFLOW_TRACKING_URI=uri)
    assert (store / "mlflow.db").is_file(), made.stderr[-2000:]
    pointer = project.dvc_file.read_bytes()
    with read_only(store):
        failed = harness.run(root, *CYCLE, MLFLOW_TRACKING_URI=uri, MLOPS_SERVICE_TIMEOUT="3")
    harness.kill_leftovers(root)
    assert failed.returncode == 3, failed.stderr[-3000:]
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "the MLflow store is read-only" in errors[0], failed.stderr[-3000:]
    assert "Traceback" not in failed.stdout + failed.stderr
    assert project.dvc_file.read_bytes() == pointer


def wait_for_server(uri: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{uri}/health", timeout=2):
            return
        time.sleep(0.5)
    raise AssertionError(f"no MLflow server at {uri}")


def test_a_tracking_server_that_goes_away_mid_cycle_is_one_line(project, tmp_path):
    root = project.root
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(harness.MLOPS).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    markers = tmp_path / "markers"
    try:
        wait_for_server(uri)
        cycle = harness.start(root, *CYCLE, failpoints="cycle.train_candidate=sleep:5", markers=markers,
                              MLFLOW_TRACKING_URI=uri, MLOPS_SERVICE_TIMEOUT="3")
        harness.wait_for_marker(markers, "cycle.train_candidate", cycle)
        os.killpg(server.pid, signal.SIGKILL)
        code = cycle.wait(timeout=120)
        out, err = cycle.communicate()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        harness.kill_leftovers(root)
    assert code == 3, err[-3000:]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"MLflow at {uri} is unreachable" in errors[0], err[-3000:]
    assert "Traceback" not in out + err
