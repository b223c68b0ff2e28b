"""Which failures of the MLflow store become one-line service errors, and which stay as they are."""

from __future__ import annotations

import sqlite3

import pytest

from pipelines.adapters import tracking_store
from pipelines.config.errors import ServiceError


@pytest.fixture(autouse=True)
def _fresh():
    tracking_store.forget_failures()
    yield
    tracking_store.forget_failures()


def test_a_refused_connection_is_an_unreachable_store():
    error = tracking_store.as_service_error(
        "http://host:5000", RuntimeError("API request failed: Max retries exceeded (Connection refused)"))
    assert isinstance(error, ServiceError) and error.exit_code == 3
    assert str(error).startswith("MLflow at http://host:5000 is unreachable")


def test_a_read_only_database_is_named_so():
    cause = sqlite3.OperationalError("attempt to write a readonly database")
    error = tracking_store.as_service_error("sqlite:////srv/mlflow.db", cause)
    assert "read-only" in str(error)


def test_other_errors_pass_through_untouched():
    missing = ValueError("RESOURCE_DOES_NOT_EXIST: no model")
    assert tracking_store.as_service_error("http://h", missing) is None
    with pytest.raises(KeyError), tracking_store.service_errors("http://h"):
        raise KeyError("x")


def test_once_down_later_calls_fail_at_once():
    with pytest.raises(ServiceError), tracking_store.service_errors("http://h"):
        raise ConnectionRefusedError("Connection refused")
    with pytest.raises(ServiceError, match="unreachable"), tracking_store.service_errors("http://h"):
        pass


def test_passwords_stay_out_of_messages():
    assert tracking_store.redact("http://me:secret@host:5000") == "http://me:***@host:5000"


def test_the_sqlite_file_of_a_store_uri():
    assert str(tracking_store.sqlite_path("sqlite:////srv/x/mlflow.db")) == "/srv/x/mlflow.db"
    assert tracking_store.sqlite_path("sqlite:///:memory:") is None


def test_an_unwritable_store_folder_is_refused(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(ServiceError, match="read-only or cannot be opened"):
        tracking_store.check_available(f"sqlite:///{blocked / 'mlflow.db'}")


def test_an_unanswering_server_is_retried_within_the_timeout():
    import time

    from pipelines.adapters.prefect_server import free_port

    started = time.monotonic()
    with pytest.raises(ServiceError, match="unreachable"):
        tracking_store.check_available(f"http://127.0.0.1:{free_port()}", timeout=1.5)
    assert time.monotonic() - started < 10


def test_a_store_found_down_is_tried_again_once_the_timeout_has_passed(monkeypatch):
    import time

    monkeypatch.setenv("MLOPS_SERVICE_TIMEOUT", "0.2")
    with pytest.raises(ServiceError), tracking_store.service_errors("http://h"):
        raise ConnectionRefusedError("Connection refused")
    time.sleep(0.3)
    with tracking_store.service_errors("http://h"):
        pass
