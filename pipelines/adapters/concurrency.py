"""How many candidates train at once, the threads each may use, and one promotion decision at a time."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator

from filelock import FileLock

from pipelines.config.project import Project
from pipelines.config.settings import Settings

log = logging.getLogger("mlops.concurrency")


def workers() -> int:
    """Candidates trained at once (``MLOPS_MAX_WORKERS``, two by default: a laptop or a CI runner)."""
    return Settings.load().max_workers


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_limits(side_by_side: int | None = None) -> dict[str, int]:
    """Native thread pools for one candidate: its share of the cores, and one BLAS thread.

    Candidates that train side by side would otherwise each start a thread per core, and OpenMP
    and OpenBLAS threads spin while they wait, so two candidates on two cores can take several
    times as long as one after the other. BLAS gets one thread in every case: threaded OpenBLAS
    runs a linear model's solver some 20x slower on the small matrices of this kind of data.
    ``side_by_side`` is how many train at once where this runs (a Dask worker's threads), when
    that is not ``MLOPS_MAX_WORKERS``.
    """
    return {"openmp": max(1, cores() // (side_by_side or workers())), "blas": 1}


DECISION_LEASE_SECONDS = 60


@contextlib.contextmanager
def decision_lock(project: Project, model: str) -> Iterator[None]:
    """One promotion decision at a time for ``model``: across this machine's processes (a file
    lock) and across machines that share a Prefect server (a global concurrency limit of one).

    A holder that dies releases the file lock at once and the Prefect slot when its lease expires.
    """
    locks = project.state_dir / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with FileLock(locks / f"decide-{_safe(model)}.lock"), _prefect_slot(f"mlops-decide-{_safe(model)}"):
        yield


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


@contextlib.contextmanager
def _prefect_slot(name: str) -> Iterator[None]:
    from prefect.concurrency.sync import concurrency

    from pipelines.adapters import runtime

    # A command's own temporary server has no other clients to exclude, and no service to free
    # the slot of a holder that was killed: the file lock alone is right there.
    if runtime.serves_only_this_command() or not _ensure_limit(name):
        yield
        return
    with concurrency(name, occupy=1, lease_duration=DECISION_LEASE_SECONDS, strict=True):
        yield


def _ensure_limit(name: str) -> bool:
    """Create the limit on first use; False when no Prefect API is at hand (the file lock serves)."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                with contextlib.suppress(ObjectAlreadyExists):
                    client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    except Exception as exc:  # noqa: BLE001 - outside a Prefect API the machine-wide lock still holds
        log.warning("no Prefect concurrency limit for %s (%s); locking on this machine only", name, exc)
        return False
    return True
