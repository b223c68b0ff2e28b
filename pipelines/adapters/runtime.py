"""Around a command's flow runs: a quick start, and an exit that loses no log line."""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from pipelines.adapters import signals
from pipelines.config import failpoints

# What the data layer loads, and what every training cycle loads on top: tracking, plots.
DATA_MODULES = ("great_expectations",)
CYCLE_MODULES = (*DATA_MODULES, "mlflow.sklearn", "mlflow.data", "matplotlib.figure")
PREDICT_MODULES = ("great_expectations", "mlflow.sklearn")
INTERRUPTED_DRAIN_SECONDS = 1.0


def family_modules(families: Iterable[str]) -> list[str]:
    """The modules the model families ``families`` declare for loading ahead of use."""
    from models.families import FAMILIES

    return sorted({module for name in families if name in FAMILIES for module in FAMILIES[name].preload})


def cycle_modules(families: Iterable[str]) -> list[str]:
    """The libraries a cycle imports when its candidates come from ``families``."""
    return [*CYCLE_MODULES, *family_modules(families)]


@contextlib.contextmanager
def prefect_api(modules: Iterable[str], log_file: Path,
                notify: Callable[[str], None] = lambda message: None,
                server_class: type | None = None, meanwhile: Callable[[], None] = lambda: None,
                **server_options: Any) -> Iterator[str]:
    """The Prefect API that flow runs inside the block use; ``modules`` are imported meanwhile.

    ``PREFECT_API_URL`` when set; otherwise a local server (by default the temporary, API-only
    kind), started here and stopped on leaving, after the runs' logs are delivered. ``meanwhile``
    (the command's own checks), then the libraries the runs need, run while it boots; a
    ``meanwhile`` that raises stops the server.
    """
    from prefect.settings import PREFECT_API_URL

    from pipelines.config.settings import Settings

    # The environment first; else a Prefect profile's own setting, as any Prefect client reads it.
    configured = Settings.load().prefect_api_url or PREFECT_API_URL.value()
    if configured:
        from pipelines.adapters import prefect_api

        prefect_api.check(configured)
        meanwhile()
        notify(f"Prefect API: {configured}")
        _import(modules)
        yield configured
        return
    from pipelines.adapters.prefect_server import TemporaryPrefectServer

    server = (server_class or TemporaryPrefectServer)(log_file, **server_options)
    server.start()
    try:
        with signals.at_hard_exit(server.kill):
            # Announced once the command's checks passed: a mistake in its input is all it prints.
            meanwhile()
            notify(server.starting_message())
            _import(modules)
            server.wait_until_ready(server.start_timeout)
            if server.ready_message():
                notify(server.ready_message())
            failpoints.hit("runtime.prefect_server_ready")
            if type(server) is TemporaryPrefectServer:
                _temporary_apis.add(server.api_url)
            with _api_url(server.api_url):
                try:
                    yield server.api_url
                finally:
                    drain_prefect()
    finally:
        if server.stopping_message():
            notify(server.stopping_message())
        server.stop()


_temporary_apis: set[str] = set()


def serves_only_this_command() -> bool:
    """Whether this process's Prefect API is a temporary server it started: one with no other
    clients, and without the services that expire the leases of concurrency slots."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() in _temporary_apis


@contextlib.contextmanager
def _api_url(url: str) -> Iterator[None]:
    """``url`` for this process's flow runs and, through the environment, for its child processes."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings({PREFECT_API_URL: url}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def _import(modules: Iterable[str]) -> None:
    for name in modules:
        # A module that fails to import is left for the code that needs it to report.
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def drain_prefect(timeout: float = 10.0) -> None:
    """Deliver the flow runs' buffered logs and events while Prefect's server is still up.

    Left to interpreter exit, the temporary server stops first and the log handler then waits
    out its timeout against a server that is gone, and the last log lines never arrive.
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    if signals.interrupted() is not None:
        # An interrupted command has seconds to end: what is sent quickly is sent, no more.
        timeout = min(timeout, INTERRUPTED_DRAIN_SECONDS)
    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=timeout)


_exit_status: list[int] = []


def exit_without_teardown(status: int) -> None:
    """Exit with ``status`` once every exit handler has run, skipping module teardown.

    Unloading torch, Great Expectations and MLflow module by module takes seconds at the end of
    every command and frees nothing the operating system would not free at once. Exit handlers
    (the temporary server's shutdown among them) and stream flushes still run; only the teardown
    after them is skipped. Call ``skip_teardown_at_exit`` first, at the start of the command.
    """
    _exit_status.append(status)
    if signals.interrupted() is not None and hasattr(atexit, "_run_exitfuncs"):
        # The interpreter would first wait for every worker thread, and a fit in native code
        # does not stop when asked: run the exit handlers now, the last of which exits.
        atexit._run_exitfuncs()
        _exit_now()
    sys.exit(status)


def skip_teardown_at_exit() -> None:
    # Exit handlers run last-registered first: registered before any other, this one runs last.
    atexit.register(_exit_now)


def _exit_now() -> None:
    if not _exit_status:
        return  # an unexpected exception: the interpreter reports it and exits its own way
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(_exit_status[-1])


# A flow-run process that `mlops serve`'s runner started imports this module with the flow; from
# then on it ends when `mlops serve` ends, and its fits stop when its flow run is cancelled.
signals.follow_parent_if_asked()
