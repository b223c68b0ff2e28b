"""How many candidates train at once, and how many threads each of them may use."""

from __future__ import annotations

import os

from pipelines.config.settings import Settings


def workers() -> int:
    """Candidates trained at once (``MLOPS_MAX_WORKERS``, two by default: a laptop or a CI runner)."""
    return Settings.load().max_workers


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def thread_limits() -> dict[str, int]:
    """Native thread pools for one candidate: its share of the cores, and one BLAS thread.

    Candidates that train side by side would otherwise each start a thread per core, and OpenMP
    and OpenBLAS threads spin while they wait, so two candidates on two cores can take several
    times as long as one after the other. BLAS gets one thread in every case: threaded OpenBLAS
    runs a linear model's solver some 20x slower on the small matrices of this kind of data.
    """
    return {"openmp": max(1, cores() // workers()), "blas": 1}
