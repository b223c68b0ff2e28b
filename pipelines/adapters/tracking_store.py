"""Whether the MLflow store can be used, and one clear error when it cannot.

MLflow retries an unreachable server for minutes by default and then fails with a traceback from
deep inside its client; a read-only SQLite store fails on the first write the same way. Here the
retries are bounded by ``MLOPS_SERVICE_TIMEOUT``, every call of the client is watched, and a store
that is down or read-only becomes a ``ServiceError``: one line, exit code 3, and every later call
in the same command fails at once instead of retrying again.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipelines.config.errors import AuthenticationError, MlopsError, PermissionDeniedError, ServiceError
from pipelines.config.settings import Settings

# What MLflow and its HTTP and database layers say when the store cannot be used at all, as
# opposed to a request it refuses (a missing model, a bad name), which callers handle themselves.
_UNREACHABLE = ("max retries exceeded", "connection refused", "failed to establish a new connection",
                "name or service not known", "connection aborted", "connection reset",
                "remote end closed connection", "read timed out", "connect timeout",
                "temporary failure in name resolution", "502 bad gateway", "503 service unavailable")
_READ_ONLY = ("readonly database", "read-only file system", "unable to open database file",
              "[errno 13] permission denied", "disk i/o error")

# A store found down, and until when later calls fail at once rather than retry again; the memory
# expires so that a long-lived process (`mlops serve`) uses the store again once it is back.
_down: dict[str, tuple[ServiceError, float]] = {}


def describe(uri: str) -> str:
    return f"MLflow at {redact(uri)}"


def redact(uri: str) -> str:
    """``uri`` without a password, for messages."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        credentials, _, host = rest.rpartition("@")
        return f"{scheme}://{credentials.split(':')[0]}:***@{host}"
    return uri


class _DropReraisedDatabaseErrors(logging.Filter):
    """MLflow logs a database error with its traceback and then raises it; the raise is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SQLAlchemy database error" not in record.getMessage()


def quiet_reraised_errors() -> None:
    logger = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _DropReraisedDatabaseErrors) for f in logger.filters):
        logger.addFilter(_DropReraisedDatabaseErrors())


def bound_client_retries() -> None:
    """MLflow's HTTP client retries within ``MLOPS_SERVICE_TIMEOUT`` seconds in all (unless set)."""
    timeout = Settings.load().service_timeout
    retries = 0
    # urllib3 sleeps factor * 2**(n-1) before retry n; with a factor of 1 that sums to 2**n - 1.
    while 2 ** (retries + 1) - 1 <= timeout and retries < 7:
        retries += 1
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(retries))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0.5")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(5, int(timeout))))


def as_service_error(uri: str, error: BaseException) -> MlopsError | None:
    """The one-line error for a store that is down, read-only or refuses the user; None for any
    other failure."""
    if isinstance(error, MlopsError):
        return error
    code = getattr(error, "error_code", None)
    if code == "UNAUTHENTICATED":
        return credentials_refused(uri)
    if code == "PERMISSION_DENIED":
        return permission_denied(uri)
    text = f"{type(error).__name__}: {error}"
    for cause in (error.__cause__, error.__context__):
        if cause is not None:
            text += f" {type(cause).__name__}: {cause}"
    lowered = text.lower()
    if any(marker in lowered for marker in _READ_ONLY):
        return ServiceError(f"the MLflow store is read-only or cannot be opened ({redact(uri)}: "
                            f"{_short(error)})")
    if any(marker in lowered for marker in _UNREACHABLE) or isinstance(error, ConnectionError):
        return ServiceError(f"{describe(uri)} is unreachable ({_short(error)})")
    return None


def credentials_refused(uri: str) -> AuthenticationError:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    given = f"user '{user}' with MLFLOW_TRACKING_PASSWORD" if user else "no MLFLOW_TRACKING_USERNAME"
    return AuthenticationError(f"{describe(uri)} refused the credentials ({given}): set "
                               "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD of an MLflow user")


def permission_denied(uri: str) -> PermissionDeniedError:
    user = os.environ.get("MLFLOW_TRACKING_USERNAME", "anonymous")
    return PermissionDeniedError(f"{describe(uri)}: user '{user}' may not do this (permission denied); "
                                 "ask an MLflow admin for EDIT or MANAGE on the experiment or model")


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


@contextlib.contextmanager
def service_errors(uri: str) -> Iterator[None]:
    """Turn a down or read-only store into a ``ServiceError``; once down, stay down for this command."""
    _raise_if_known_down(uri)
    try:
        yield
    except Exception as exc:
        error = as_service_error(uri, exc)
        if error is None:
            raise
        if type(error) is ServiceError:
            _remember_down(uri, error)
        raise error from exc


def _remember_down(uri: str, error: ServiceError) -> None:
    _down[uri] = (error, time.monotonic() + Settings.load().service_timeout)


def _raise_if_known_down(uri: str) -> None:
    known = _down.get(uri)
    if known is None:
        return
    error, until = known
    if time.monotonic() < until:
        raise error
    del _down[uri]


def forget_failures() -> None:
    """Try a store that was down again at once (tests)."""
    _down.clear()


class GuardedClient:
    """An ``MlflowClient`` whose every call goes through ``service_errors``."""

    def __init__(self, client: Any, uri: str) -> None:
        self._client = client
        self._uri = uri

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute
        return _guarded(attribute, self._uri)


def _guarded(method: Callable[..., Any], uri: str) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with service_errors(uri):
            return method(*args, **kwargs)

    return call


@contextlib.contextmanager
def first_use(uri: str) -> Iterator[None]:
    """Held while a process opens a local SQLite store, so that only one creates its tables."""
    path = sqlite_path(uri)
    if path is None or not path.parent.is_dir():
        yield
        return
    from filelock import FileLock

    lock = FileLock(path.parent / f".{path.name}.lock")
    try:
        lock.acquire()
    except OSError:
        yield  # a folder that cannot hold a lock cannot hold a store either: the store says so
        return
    try:
        yield
    finally:
        lock.release()


def check_available(uri: str, timeout: float | None = None) -> None:
    """Fail with one line unless the store answers (a server) or can be written (a local store)."""
    _raise_if_known_down(uri)
    if uri.startswith(("http://", "https://")):
        _check_server(uri, Settings.load().service_timeout if timeout is None else timeout)
    elif uri.startswith("sqlite:"):
        _check_sqlite(uri)


def _check_server(uri: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=min(10.0, timeout)):
                _check_credentials(uri, timeout)
                return
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403, 404):
                return  # it answers; authentication and routes are the client's business
            reason: Any = exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
        if time.monotonic() + delay > deadline:
            error = ServiceError(f"{describe(uri)} is unreachable ({reason}; retried for "
                                 f"{timeout:g} s, MLOPS_SERVICE_TIMEOUT)")
            _remember_down(uri, error)
            raise error
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def authorised_request(url: str) -> urllib.request.Request:
    """A request to an MLflow server with this client's basic-auth credentials, when it has them."""
    import base64

    request = urllib.request.Request(url)
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    return request


def _check_credentials(uri: str, timeout: float) -> None:
    """A server with auth answers an authenticated read with 401 when the credentials are wrong."""
    request = authorised_request(f"{uri.rstrip('/')}/api/2.0/mlflow/experiments/search?max_results=1")
    try:
        with urllib.request.urlopen(request, timeout=min(10.0, timeout)):
            return
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise credentials_refused(uri) from None
    except (urllib.error.URLError, OSError):
        pass  # answered /health a moment ago: the client's own retries deal with a blip


def _check_sqlite(uri: str) -> None:
    path = sqlite_path(uri)
    if path is None:
        return
    try:
        # A read-only file system or file: SQLite would open it read-only without a word.
        for target in (path, path.parent) if path.exists() else (path.parent,):
            if target.exists() and not os.access(target, os.W_OK):
                raise PermissionError(f"{target} is not writable")
        if path.exists():
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=30)) as db:
                db.execute("BEGIN IMMEDIATE")
                db.execute("ROLLBACK")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            probe = path.parent / f".{path.name}.{os.getpid()}.probe"
            probe.write_bytes(b"")
            probe.unlink()
    except (sqlite3.Error, OSError) as exc:
        error = ServiceError(f"the MLflow store is read-only or cannot be opened ({path}: {exc})")
        _remember_down(uri, error)
        raise error from None


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for an in-memory or URI-style store."""
    rest = uri.removeprefix("sqlite://")
    if not rest.startswith("/"):
        return None
    path = rest[1:].split("?")[0]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path).resolve()
