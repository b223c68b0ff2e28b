"""The life of one `mlops` command's process: quiet services, its log, a quick exit that loses no log line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.adapters import logs, runtime, signals
from pipelines.config.errors import MlopsError

if TYPE_CHECKING:
    from pipelines.config.project import Project

DEBUG_VARIABLE = "MLOPS_DEBUG"

QUIET_SERVICES = {
    "DVC_NO_ANALYTICS": "true",
    # A temporary Prefect server otherwise tries to send usage data, and logs an error when offline.
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    # Progress bars of artifact downloads would interleave with the flow logs.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


def begin() -> None:
    """Call first: quiets the services' usage reporting and arranges a quick exit.

    Settings are read when a command first needs them (finding the project does), so `--help`
    stays instant and a bad value is still a one-line error before anything runs.
    """
    for name, value in QUIET_SERVICES.items():
        os.environ.setdefault(name, value)
    runtime.skip_teardown_at_exit()
    signals.install()


def interruption() -> tuple[int, str] | None:
    """After SIGINT or SIGTERM: the exit status and the one-line reason to print, once."""
    return signals.interruption()


def enable_debug() -> None:
    """Tracebacks on the terminal too, here and in the processes this one starts (flow runs)."""
    os.environ[DEBUG_VARIABLE] = "1"


def debugging() -> bool:
    """``--debug`` or ``MLOPS_DEBUG``: tracebacks go to the terminal as well as to the log file."""
    from pipelines.config.settings import Settings

    try:
        return Settings.load().debug
    except MlopsError:
        return False  # a bad value is reported as the command's error


def attach_log(project: Project) -> Path | None:
    """Record everything from now on in the project's log file; the terminal then shows no
    tracebacks unless debugging. Returns the file, None when it cannot be written."""
    return logs.record_to(project.state_dir / logs.LOG_FILE, debugging(), sys.argv)


def record_failure(error: BaseException) -> Path | None:
    """The command's failure, with its traceback, in the log file; returns the file if there is one."""
    return logs.record_failure(error)


def end(status: int) -> None:
    """Deliver the flow runs' last logs while their server is up, then exit without module teardown."""
    if "prefect.logging.handlers" in sys.modules:
        runtime.drain_prefect()
    runtime.exit_without_teardown(status)
