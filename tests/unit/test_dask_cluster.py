"""What travels to a Dask worker, and how a lost worker is told from a failing candidate."""

from __future__ import annotations

import pytest

from models.dask_xgboost import on_dask_worker
from pipelines.adapters import dask_cluster
from pipelines.adapters.tracker import StoreAccess, Tracker, TrackingError


def test_store_access_carries_the_connection_variables_and_never_shows_them(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ana")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret")
    monkeypatch.setenv("UNRELATED_SECRET", "x")
    access = StoreAccess.of_this_process("http://mlflow:5000")
    assert access.connection == {"MLFLOW_TRACKING_USERNAME": "ana", "MLFLOW_TRACKING_PASSWORD": "s3cret"}
    assert "s3cret" not in repr(access)


def test_a_worker_on_another_host_never_creates_a_store_of_its_own(tmp_path):
    missing = tmp_path / "elsewhere" / "mlflow.db"
    with pytest.raises(TrackingError, match="need a tracking server"):
        Tracker.elsewhere(StoreAccess(f"sqlite:///{missing}"))
    assert not missing.parent.exists()


def test_lost_workers_are_told_from_failing_candidates():
    from distributed.comm.core import CommClosedError

    lost = CommClosedError("in <TCP (closed)>: Stream is closed")
    assert dask_cluster.is_lost_worker(lost)
    assert dask_cluster.describe_loss(lost).startswith("Dask worker lost while training (CommClosedError")
    assert not dask_cluster.is_lost_worker(ValueError("learning_rate must be positive"))


def test_without_a_scheduler_candidates_train_in_the_flows_threads(monkeypatch):
    monkeypatch.delenv("MLOPS_DASK_ADDRESS", raising=False)
    with dask_cluster.cluster_runner() as cluster:
        assert cluster is None
    assert dask_cluster.threads_beside() is None and not on_dask_worker()


def test_with_a_scheduler_candidates_go_to_dask(monkeypatch):
    from prefect_dask import DaskTaskRunner

    monkeypatch.setenv("MLOPS_DASK_ADDRESS", "tcp://127.0.0.1:8786")
    runner = dask_cluster.cluster_runner()
    assert isinstance(runner, DaskTaskRunner) and runner.address == "tcp://127.0.0.1:8786"
