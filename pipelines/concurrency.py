"""How many candidates train at once, and how many threads each of them may use."""

from __future__ import annotations

import os

WORKERS_ENV = "MLOPS_MAX_WORKERS"


def workers() -> int:
    """Candidates trained at once: two by default, which suits a laptop and a CI runner alike."""
    try:
        return max(1, int(os.environ.get(WORKERS_ENV, "2")))
    except ValueError:
        return 2


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
