"""Candidates on a Dask cluster: the task runner that fans them out, and what a lost worker leaves.

With ``MLOPS_DASK_ADDRESS`` set, each candidate trains in a Dask worker process (through
prefect-dask's task runner, so it is still a Prefect task run of the cycle); without it, in the
command's own threads. Workers are separate processes, often on other machines: they see none of
the command's environment, so everything they need travels with the task.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from pipelines.config.errors import MlopsError
from pipelines.config.settings import Settings

# Names of the exceptions a future raises when its worker died or the scheduler gave up on it.
_LOST_WORKER_ERRORS = {"KilledWorker", "CommClosedError", "FutureCancelledError", "CancelledError",
                       "StreamClosedError"}


class DaskUnavailableError(MlopsError):
    """The Dask scheduler named by MLOPS_DASK_ADDRESS cannot be used."""


def address() -> str | None:
    return Settings.load().dask_address


def worker_identity() -> str:
    """This process as the ``worker`` tag of what it trains: host and pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def cluster_runner() -> contextlib.AbstractContextManager[Any]:
    """Dask's task runner, to enter, when a scheduler is configured; else None (the flow's threads)."""
    scheduler = address()
    if not scheduler:
        return contextlib.nullcontext(None)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise DaskUnavailableError("MLOPS_DASK_ADDRESS is set but prefect-dask is not installed "
                                   "(pip install 'mlops-pipelines[team]')") from None
    return DaskTaskRunner(address=scheduler)


def threads_beside() -> int | None:
    """Tasks a Dask worker runs at once, when this code runs on one."""
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    return None


def is_lost_worker(error: BaseException) -> bool:
    """Whether ``error`` says the worker running a task died, rather than the task failing."""
    return type(error).__name__ in _LOST_WORKER_ERRORS


def describe_loss(error: BaseException) -> str:
    detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"Dask worker lost while training ({type(error).__name__}: {detail[:300]})"


def mark_task_run_crashed(task_run_id: Any, message: str) -> None:
    """A task run whose worker died stays Running in Prefect; it is Crashed, and says why."""
    if task_run_id is None:
        return
    with contextlib.suppress(Exception):
        from prefect.client.orchestration import get_client
        from prefect.states import Crashed

        with get_client(sync_client=True) as client:
            client.set_task_run_state(task_run_id, Crashed(message=message), force=True)
