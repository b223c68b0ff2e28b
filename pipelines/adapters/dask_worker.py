"""Set-up of the Dask workers a cycle uses: the Prefect API its task runs report to.

A task on a worker runs inside the cycle's Prefect context, but Prefect's background senders of
events and logs read the worker process's own settings. A worker without ``PREFECT_API_URL`` (one
started for a command's temporary server, say) would have them start a Prefect server of its
own, send the task runs' states there, and leave that server running. Imported only when a Dask
scheduler is configured: ``distributed`` is an optional dependency.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

PLUGIN_NAME = "mlops-prefect-api"


def prefect_connection() -> dict[str, str]:
    """This process's Prefect API and its credentials, as environment variables."""
    from prefect.settings import get_current_settings

    api = get_current_settings().api
    connection = {"PREFECT_API_URL": api.url} if api.url else {}
    if api.key is not None:
        connection["PREFECT_API_KEY"] = api.key.get_secret_value()
    if api.auth_string is not None:
        connection["PREFECT_API_AUTH_STRING"] = api.auth_string.get_secret_value()
    return connection


class PrefectConnection(WorkerPlugin):
    """Points a worker's Prefect settings at the command's API, on every worker, now and later."""

    def __init__(self, connection: dict[str, str]) -> None:
        self.connection = connection

    def __repr__(self) -> str:
        return f"PrefectConnection({self.connection.get('PREFECT_API_URL')!r})"

    def setup(self, worker: Any) -> None:
        from prefect.context import refresh_global_settings_context
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        os.environ.update(self.connection)
        refresh_global_settings_context()
        # Senders started for an earlier API keep its address: drained now, they start afresh.
        for sender in (EventsWorker, APILogWorker):
            with contextlib.suppress(Exception):
                sender.drain_all(timeout=5)


def point_workers_at_this_api(client: Any) -> None:
    connection = prefect_connection()
    if connection:
        client.register_plugin(PrefectConnection(connection), name=PLUGIN_NAME)
