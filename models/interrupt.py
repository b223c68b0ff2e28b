"""A process-wide stop request that long fits honour between folds, epochs and boosting rounds.

A signal handler runs in the main thread only, while fits run in worker threads inside native
code that no exception can reach. The handler sets this flag; every fit checks it at its next
safe point and unwinds with ``Stopped``.
"""

from __future__ import annotations

import threading

_stop = threading.Event()


class Stopped(BaseException):
    """Raised at a safe point once a stop was requested.

    A BaseException, so the per-candidate ``except Exception`` that records a failed candidate
    lets it through and the whole cycle unwinds instead.
    """

    def __init__(self, message: str = "stop requested") -> None:
        super().__init__(message)


def request() -> None:
    """Ask every running fit to stop at its next safe point."""
    _stop.set()


def requested() -> bool:
    """Whether a stop was requested in this process."""
    return _stop.is_set()


def check() -> None:
    """Raise ``Stopped`` if a stop was requested."""
    if _stop.is_set():
        raise Stopped()


def reset() -> None:
    """Forget a stop request (for tests that run several cycles in one process)."""
    _stop.clear()
