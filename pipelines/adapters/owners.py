"""Which process owns a record (a run, an intent), and whether that process still exists.

A process is named by its host, its pid and its start time, so a pid reused by a later process
is not mistaken for the owner. Only processes on this host can be checked.
"""

from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

TAG_HOST = "process.host"
TAG_PID = "process.pid"
TAG_STARTED = "process.started"


@functools.lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux); None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    # The command name (field 2) may hold spaces; fields after its closing parenthesis do not.
    return stat.rsplit(")", 1)[1].split()[19]


def tags() -> dict[str, str]:
    """This process, as tags for the records it creates."""
    pid = os.getpid()
    return {TAG_HOST: _host(), TAG_PID: str(pid), TAG_STARTED: start_time(pid) or ""}


def describe(recorded: dict[str, str]) -> str:
    if TAG_PID not in recorded:
        return "unrecorded"
    return f"pid {recorded[TAG_PID]} on {recorded.get(TAG_HOST, '?')}"


def is_dead(recorded: dict[str, str]) -> bool:
    """True when the recording process is known to have ended.

    A record without an owner predates owner tags and has no live writer to wait for; one from
    another host cannot be checked from here and counts as alive.
    """
    if TAG_PID not in recorded:
        return True
    if recorded.get(TAG_HOST) != _host():
        return False
    pid = int(recorded[TAG_PID])
    if Path("/proc").is_dir():
        started = start_time(pid)
        return started is None or (bool(recorded.get(TAG_STARTED)) and started != recorded[TAG_STARTED])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
