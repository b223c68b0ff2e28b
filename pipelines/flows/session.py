"""The life of one `mlops` command's process: quiet services, a quick exit that loses no log line."""

from __future__ import annotations

import os
import sys

from pipelines.adapters import runtime

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


def end(status: int) -> None:
    """Deliver the flow runs' last logs while their server is up, then exit without module teardown."""
    if "prefect.logging.handlers" in sys.modules:
        runtime.drain_prefect()
    runtime.exit_without_teardown(status)
