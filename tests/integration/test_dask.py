"""Candidates on a real Dask cluster: a `dask scheduler` and two `dask worker` processes.

The workers start in a folder of their own with none of the test's MLflow settings, as workers on
another machine would: whatever they log must reach the project's store through what the cycle
passes them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from mlflow import MlflowClient

from pipelines.adapters import tracker as tracking
from pipelines.adapters.prefect_server import free_port
from pipelines.flows.cycle import retrain
from tests.definitions import shipped, write_definition

pytestmark = [pytest.mark.integration, pytest.mark.dask, pytest.mark.usefixtures("prefect_server")]

BIN = Path(sys.executable).parent
SLOW_CANDIDATE = "mlp"


class Cluster:
    def __init__(self, root: Path, worker_env: dict[str, str]) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.worker_env = worker_env

    def _start(self, command: list[str], env: dict[str, str], cwd: Path, log: str) -> subprocess.Popen[bytes]:
        cwd.mkdir(parents=True, exist_ok=True)
        with (self.root / log).open("ab") as output:
            process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes.append(process)
        return process

    def start(self) -> Cluster:
        base = {key: value for key, value in os.environ.items()
                if not key.startswith(("MLFLOW_", "PREFECT_API", "MLOPS_"))}
        scheduler_env = {**base,
                         # A task whose worker dies fails at once, and each worker holds one task.
                         "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
                         "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0"}
        self._start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
                     "--no-dashboard"], scheduler_env, self.root / "scheduler", "scheduler.log")
        for number in (1, 2):
            folder = self.root / f"worker-{number}"
            env = {**base, **self.worker_env, "MLOPS_FAILPOINT_MARKERS": str(folder / "reached")}
            self.workers.append(self._start(
                [str(BIN / "dask"), "worker", self.address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--name", f"worker-{number}", "--local-directory", str(folder / "dask")],
                env, folder, f"worker-{number}.log"))
        self._wait_for_workers(2)
        return self

    def _wait_for_workers(self, count: int, timeout: float = 120) -> None:
        from distributed import Client

        with Client(self.address, timeout=timeout) as client:
            client.wait_for_workers(count, timeout=timeout)

    def stop(self) -> None:
        for process in self.processes:
            # The whole group, also of a worker already killed: nothing it started may outlive it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def worker_pids(self) -> set[str]:
        return {str(worker.pid) for worker in self.workers}

    def worker_reached(self, failpoint: str) -> subprocess.Popen[bytes] | None:
        for number, worker in enumerate(self.workers, start=1):
            if (self.root / f"worker-{number}" / "reached" / failpoint).exists():
                return worker
        return None


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    started = Cluster(tmp_path / "dask", {
        # Only the slow candidate stalls, so that a test can kill the worker in the middle of it.
        "MLOPS_FAILPOINTS": f"cycle.train_candidate.{SLOW_CANDIDATE}=sleep:600",
    })
    try:
        started.start()
        monkeypatch.setenv("MLOPS_DASK_ADDRESS", started.address)
        yield started
    finally:
        started.stop()


def candidate_runs(client: MlflowClient, experiment: str, parent_id: str):
    found = client.get_experiment_by_name(experiment)
    return {run.data.tags[tracking.TAG_CANDIDATE]: run for run in client.search_runs([found.experiment_id])
            if run.data.tags.get("mlflow.parentRunId") == parent_id}


def test_candidates_train_and_log_on_different_workers(project, cluster, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    marketing = shipped("marketing")
    candidates = {**marketing["candidates"], "xgboost_dask": {"params": {"n_estimators": 100}}}
    write_definition(project.root / "pipelines" / "usecases", marketing, candidates=candidates)
    outcome = retrain("marketing", str(project.root), ["linear", "hist_boosting", "xgboost_dask"])

    training = outcome.training
    assert training.failed == []
    client = MlflowClient(tracking_uri=f"sqlite:///{project.root / 'mlflow.db'}")
    runs = candidate_runs(client, "marketing", training.parent_run_id)
    assert set(runs) == {"linear", "hist_boosting", "xgboost_dask"}
    workers = {name: run.data.tags[tracking.TAG_WORKER] for name, run in runs.items()}
    pids = {worker.rsplit(":", 1)[1] for worker in workers.values()}
    assert pids <= cluster.worker_pids() and len(pids) == 2, workers
    assert str(os.getpid()) not in pids
    for run in runs.values():
        assert run.info.status == "FINISHED"
        assert run.data.tags["process.pid"] in cluster.worker_pids()  # logged by the worker itself
        assert run.data.tags[tracking.TAG_DATA_VERSION] == outcome.data_version
    # The store the workers logged to is the project's: nothing fell back to a store of their own.
    strays = [p for p in cluster.root.rglob("*") if p.name in ("mlflow.db", "mlruns", "mlartifacts")]
    assert strays == []
    # Their task runs reported to the cycle's Prefect API: no worker started a server of its own.
    children = [psutil.Process(worker.pid).children() for worker in cluster.workers]
    assert [child.cmdline() for started in children for child in started] == []
    assert training.champion is not None


def test_a_killed_worker_fails_its_candidate_only(project, cluster, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    result: dict[str, object] = {}

    def cycle() -> None:
        try:
            result["outcome"] = retrain("marketing", str(project.root), ["linear", "hist_boosting",
                                                                        SLOW_CANDIDATE])
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            result["error"] = exc

    running = threading.Thread(target=cycle)
    running.start()
    failpoint = f"cycle.train_candidate.{SLOW_CANDIDATE}"
    deadline = time.monotonic() + 300
    victim = None
    while victim is None and time.monotonic() < deadline and running.is_alive():
        victim = cluster.worker_reached(failpoint)
        time.sleep(0.2)
    assert victim is not None, f"no worker reached {failpoint}: {result}"
    victim.kill()
    running.join(timeout=600)

    assert "error" not in result, result.get("error")
    training = result["outcome"].training
    assert training.failed == [SLOW_CANDIDATE]
    assert training.champion is not None
    client = MlflowClient(tracking_uri=f"sqlite:///{project.root / 'mlflow.db'}")
    runs = candidate_runs(client, "marketing", training.parent_run_id)
    assert runs[SLOW_CANDIDATE].info.status == "FAILED"
    assert "worker lost" in runs[SLOW_CANDIDATE].data.tags["error"]
    assert {runs[name].info.status for name in ("linear", "hist_boosting")} == {"FINISHED"}
    parent = client.get_run(training.parent_run_id)
    assert parent.info.status == "FINISHED"
