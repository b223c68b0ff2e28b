"""SIGTERM and SIGINT end an `mlops` command within seconds, and a served flow run with its server.

A Python signal handler runs in the main thread, between two bytecodes, and a flow run replaces
the SIGTERM handler with Prefect's own. Neither helps while the main thread waits for training
threads that sit in native code. So the signal's number also goes, at once and whatever the main
thread does, through Python's wakeup file descriptor to a watcher thread: it asks every fit to stop
at its next safe point (``models.interrupt``) and gives the command a few seconds to unwind before
it ends the process regardless. A second Ctrl-C ends it at once.

Processes that ``mlops serve``'s runner starts for flow runs are not ours to start, so they follow
their parent on their own: ``follow_parent_if_asked`` makes them end when `mlops serve` ends, and
stop their fits when their flow run is cancelled.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

from models import interrupt

GRACE_SECONDS = 5.0
"""How long an interrupted command may take to close its runs and stop its server."""
PARENT_VARIABLE = "MLOPS_STOP_WITH_PARENT"
"""Set by `mlops serve` to its process id: its flow-run processes end when it does."""
FOLLOW_POLL_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1
_STOPPING = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that every clean-up for Ctrl-C runs."""


class _Interruption:
    """What this process was sent, and whether the one line about it was written."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.signals: list[int] = []
        self.reported = False
        self.grace: float | None = GRACE_SECONDS
        self.hard_exit_actions: list[Callable[[], None]] = []
        self.installed = False
        self.wakeups: tuple[socket.socket, socket.socket] | None = None
        """Both ends of the socket Python writes signal numbers to; the writer must stay open."""


_interruption = _Interruption()


def install(grace: float | None = GRACE_SECONDS) -> None:
    """Call once, from the main thread, at the start of a command."""
    if _interruption.installed or threading.current_thread() is not threading.main_thread():
        return
    _interruption.grace = grace
    signal.signal(signal.SIGTERM, _raise_terminated)
    # SIGINT keeps Python's own handler: it raises KeyboardInterrupt, and asyncio.run (the
    # runner of `mlops serve`) turns it into an orderly cancellation only when it finds that one.
    reader, writer = socket.socketpair()
    for end in (reader, writer):
        end.setblocking(False)
    signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    _interruption.wakeups = (reader, writer)
    threading.Thread(target=_watch, args=(reader,), name="mlops-signals", daemon=True).start()
    _interruption.installed = True


def set_grace(seconds: float | None) -> None:
    """How long the first signal leaves the command to finish; None waits as long as it takes."""
    _interruption.grace = seconds


def interrupted() -> int | None:
    """The first stopping signal this process received, if any."""
    _take_pending()
    with _interruption.lock:
        return _interruption.signals[0] if _interruption.signals else None


def interruption() -> tuple[int, str] | None:
    """The exit status and the one-line reason for an interrupted command, the first time asked."""
    _take_pending()
    with _interruption.lock:
        if not _interruption.signals or _interruption.reported:
            return None
        _interruption.reported = True
        signum = _interruption.signals[0]
    return 128 + signum, f"interrupted ({signal.Signals(signum).name})"


@contextlib.contextmanager
def at_hard_exit(action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` (quick, no waiting) if the process ends without unwinding, inside the block."""
    _interruption.hard_exit_actions.append(action)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            _interruption.hard_exit_actions.remove(action)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def _watch(reader: socket.socket) -> None:
    while True:
        select.select([reader], [], [])
        _take_pending()


def _take_pending() -> None:
    """Handle the signals whose numbers wait in the wakeup socket.

    The watcher does so as they come; the main thread too, before it reports an interruption,
    since the KeyboardInterrupt it handles may come before the watcher's turn.
    """
    if _interruption.wakeups is None:
        return
    try:
        data = _interruption.wakeups[0].recv(64)
    except (BlockingIOError, InterruptedError):
        return
    for signum in data:
        if signum in _STOPPING:
            _received(signum)


def _received(signum: int) -> None:
    with _interruption.lock:
        first = not _interruption.signals
        _interruption.signals.append(signum)
        grace = _interruption.grace
    interrupt.request()
    if first and grace is not None:
        reason = f"not done {grace:g} s later, so ended without waiting for the work still running"
        deadline = threading.Timer(grace, _hard_exit, args=(signum, reason))
        deadline.daemon = True
        deadline.start()
    # Prefect hands a SIGTERM back to the process once its flow run has unwound, so only a
    # second Ctrl-C means "now"; a repeated SIGTERM is left to the deadline.
    elif not first and signum == signal.SIGINT:
        _hard_exit(signum, "interrupted twice, so ended without waiting")


def _hard_exit(signum: int, reason: str) -> None:
    """End the process now: the work in threads cannot be unwound, only abandoned."""
    _end_now(128 + signum, f"interrupted ({signal.Signals(signum).name}); {reason}")


def _end_now(status: int, message: str) -> None:
    for action in list(_interruption.hard_exit_actions):
        with contextlib.suppress(Exception):
            action()
    with _interruption.lock:
        report = not _interruption.reported
        _interruption.reported = True
    if report:
        with contextlib.suppress(Exception):
            sys.stderr.write(f"error: {message}\n")
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


# --- processes started for us by others: flow runs under `mlops serve` ---------------------------

def parent_death_switch() -> Callable[[int], None] | None:
    """Linux: a call that has the kernel send a signal to the calling thread's process when the
    thread that started it ends; None elsewhere.

    Looked up ahead of use, so that a freshly forked child only has to call it.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda signum: prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


def arm_parent_death(signum: int = signal.SIGKILL) -> bool:
    """Have this process sent ``signum`` when its parent ends; False where that cannot be arranged.

    The setting belongs to the calling thread: call it from one that lasts as long as the process.
    """
    switch = parent_death_switch()
    if switch is None:
        return False
    switch(signum)
    return True


def follow_parent_if_asked() -> None:
    """In a flow-run process that `mlops serve` started: end with it, stop fits on cancellation.

    Runs wherever the flow's module is imported (Prefect imports it in a worker thread), so the
    watching happens in a thread of its own rather than in signal handlers.
    """
    parent = os.environ.get(PARENT_VARIABLE, "")
    if not parent.isdigit() or os.getppid() != int(parent) or _following.is_set():
        return  # not a direct child of `mlops serve`: a user's own command, or one of its children
    _following.set()
    threading.Thread(target=_follow, args=(int(parent),), name="mlops-follow-serve", daemon=True).start()


_following = threading.Event()


def _follow(parent: int) -> None:
    # This thread lasts as long as the process, so the parent-death signal it arms lasts too.
    armed = arm_parent_death(signal.SIGTERM)
    with _cancellation_check(os.environ.get("PREFECT__FLOW_RUN_ID")) as cancelled:
        while os.getppid() == parent and not cancelled():
            time.sleep(FOLLOW_POLL_SECONDS)
    orphaned = os.getppid() != parent
    interrupt.request()
    if orphaned and not armed:
        # Prefect's handler turns SIGTERM into a crashed flow run that unwinds, as the kernel's
        # parent-death signal does where there is one. A cancelled run gets its SIGTERM from the
        # runner, which then records the cancellation.
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_SECONDS)
    reason = "`mlops serve` ended" if orphaned else "the flow run was cancelled"
    _end_now(128 + signal.SIGTERM, f"{reason}; ended without waiting for the work still running")


@contextlib.contextmanager
def _cancellation_check(flow_run_id: str | None) -> Iterator[Callable[[], bool]]:
    """Whether this process's flow run is being cancelled (never, without one or its server)."""
    with contextlib.ExitStack() as stack:
        client = None
        if flow_run_id:
            from prefect.client.orchestration import get_client

            with contextlib.suppress(Exception):
                client = stack.enter_context(get_client(sync_client=True))
        yield (lambda: False) if client is None else (lambda: _is_cancelling(client, flow_run_id))


def _is_cancelling(client: Any, flow_run_id: str) -> bool:
    try:
        state = client.read_flow_run(UUID(flow_run_id)).state
    except Exception:  # noqa: BLE001 - the server may be busy or going: look again later
        return False
    return state is not None and (state.is_cancelling() or state.is_cancelled())
