"""No process outlives its `mlops` command, however the command ends: kill -9 included.

Each test kills a real command while it holds what it started: the temporary Prefect server of
`mlops run` and `mlops data add`; the full server, the runner and a flow run of `mlops serve`.
Cancelling that flow run from the Prefect API ends its process within seconds too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from pipelines.adapters.signals import GRACE_SECONDS
from tests.faults.harness import (
    MLOPS,
    environment,
    kill_leftovers,
    processes_in,
    start,
    wait_for_marker,
    wait_until_no_processes,
)

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# A flow run that `mlops serve` leaves behind gets GRACE_SECONDS to unwind before it ends itself
# (about 6 s in all on a quiet machine); the rest is room for a busy one.
GONE_WITHIN = GRACE_SECONDS + 10.0


def kill_9(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def assert_started_a_server(root: Path) -> None:
    """Without a server to leave behind, a test of what is left behind would prove nothing."""
    assert any("prefect" in command and "mlops" not in command for command in processes_in(root)), \
        processes_in(root)


def test_kill_9_during_training_leaves_no_prefect_server(project, tmp_path):
    root, markers = project.root, tmp_path / "markers"
    try:
        process = start(root, "run", "--use-case", "marketing", "--candidates", "linear",
                        failpoints="cycle.train_candidate=sleep:60", markers=markers)
        wait_for_marker(markers, "cycle.train_candidate", process)
        assert_started_a_server(root)
        kill_9(process)
        left = wait_until_no_processes(root, GONE_WITHIN)
    finally:
        kill_leftovers(root)
    assert left == []


def test_kill_9_of_data_add_leaves_no_prefect_server(project, tmp_path):
    root, markers = project.root, tmp_path / "markers"
    batch = tmp_path / "batch.csv"
    lines = (root / "data" / "marketing.csv").read_text().splitlines()
    batch.write_text("\n".join(lines[:6]) + "\n")
    try:
        process = start(root, "data", "add", str(batch), "--use-case", "marketing",
                        failpoints="runtime.prefect_server_ready=sleep:60", markers=markers)
        wait_for_marker(markers, "runtime.prefect_server_ready", process)
        assert_started_a_server(root)
        kill_9(process)
        left = wait_until_no_processes(root, GONE_WITHIN)
    finally:
        kill_leftovers(root)
    assert left == []


class Serving:
    """`mlops serve` with its own Prefect server, and a client of that server."""

    def __init__(self, root: Path, tmp_path: Path, markers: Path) -> None:
        from pipelines.adapters.prefect_server import free_port

        self.root, self.markers, self.log = root, markers, tmp_path / "serve.log"
        port = free_port()
        self.api_url = f"http://127.0.0.1:{port}/api"
        env = environment("cycle.train_candidate=sleep:120", markers,
                          PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_LOGGING_LEVEL="INFO")
        with self.log.open("w") as stream:
            self.process = subprocess.Popen(
                [MLOPS, "serve", "--use-case", "marketing", "--poll", "1", "--port", str(port)],
                cwd=root, env=env, stdout=stream, stderr=subprocess.STDOUT)
        self.wait_for(lambda: "Ctrl-C stops everything" in self.output(), "mlops serve to start", 240)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, predicate, what: str, timeout: float = 240):
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            assert self.process.poll() is None, f"mlops serve ended waiting for {what}:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s:\n{self.output()}"
            time.sleep(0.2)
        return value

    def client(self):
        from prefect.client.orchestration import SyncPrefectClient

        return SyncPrefectClient(self.api_url)

    def start_retraining(self):
        """A retrain flow run of the served deployment, once its fit is under way."""
        from prefect.exceptions import ObjectNotFound

        def deployment():
            with self.client() as client:
                try:
                    return client.read_deployment_by_name("retrain/retrain-marketing")
                except ObjectNotFound:
                    return None

        found = self.wait_for(deployment, "the retrain deployment", 60)
        (self.markers / "cycle.train_candidate").unlink(missing_ok=True)
        with self.client() as client:
            run = client.create_flow_run_from_deployment(found.id)
        wait_for_marker(self.markers, "cycle.train_candidate", self.process)
        return run

    def flow_run_processes(self) -> list[str]:
        return [command for command in processes_in(self.root) if "prefect.engine" in command]


def test_a_cancelled_flow_run_ends_within_seconds_and_kill_9_of_serve_leaves_nothing(project, tmp_path):
    from prefect.states import Cancelling

    root = project.root
    try:
        serving = Serving(root, tmp_path, tmp_path / "markers")
        run = serving.start_retraining()
        assert serving.flow_run_processes()
        with serving.client() as client:
            client.set_flow_run_state(run.id, Cancelling())
        cancelled = time.monotonic()
        serving.wait_for(lambda: not serving.flow_run_processes(), "the cancelled flow run to end", 60)
        seconds = time.monotonic() - cancelled
        with serving.client() as client:
            state = serving.wait_for(lambda: (s := client.read_flow_run(run.id).state).is_final() and s,
                                     "the flow run's final state", 60)

        serving.start_retraining()
        assert_started_a_server(root)
        assert serving.flow_run_processes()
        kill_9(serving.process)
        left = wait_until_no_processes(root, GONE_WITHIN)
    finally:
        kill_leftovers(root)
    assert seconds < GONE_WITHIN, f"the flow run's process ended {seconds:.1f} s after its cancellation"
    assert state.is_cancelled(), state
    assert left == []
