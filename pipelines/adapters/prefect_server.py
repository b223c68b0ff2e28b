"""A Prefect server in a child process, on a local port.

The temporary kind serves the flow runs of one command, like Prefect's own temporary server, but
starts without importing Prefect's server code into the command's process, so the command can
load its own libraries while the server boots. The full kind is `prefect server start`, with its
UI and the services that run schedules and event triggers, for `mlops serve`.

Either kind ends with the command that started it, however the command ends: on Linux the kernel
kills it when its parent ends, and everywhere a watchdog process kills its process group once the
command's end closes the pipe the watchdog reads.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from pipelines.adapters import signals
from pipelines.config.errors import MlopsError

HOST = "127.0.0.1"
# Reads its standard input until the command that holds the other end is gone, however it ended,
# then kills the server's process group (the group's id is the server's process id).
_WATCHDOG = """# mlops: kills the Prefect server when the command that started it is gone
import os, signal, sys
while os.read(0, 1):
    pass
try:
    os.killpg(int(sys.argv[1]), signal.SIGKILL)
except OSError:
    pass
"""


class PrefectServerError(MlopsError):
    """The local Prefect server did not start."""


def free_port(host: str = HOST) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = HOST) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        # As servers bind: a port whose last connections linger in TIME_WAIT is free to them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class TemporaryPrefectServer:
    """Prefect's API without its UI or background services, for one command's flow runs."""

    kind = "temporary Prefect server"
    start_timeout = 60.0

    def __init__(self, log_file: Path, host: str = HOST, port: int | None = None) -> None:
        self.host = host
        self.port = port
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._lifeline: int | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def health_url(self) -> str:
        return f"{self.api_url}/health"

    def starting_message(self) -> str:
        return f"temporary Prefect server on {self.api_url} (set PREFECT_API_URL to use your own)"

    def ready_message(self) -> str | None:
        return None

    def stopping_message(self) -> str | None:
        return None

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                "--host", self.host, "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]

    def _environment(self) -> dict[str, str]:
        # The switches Prefect sets for its own temporary server: API only, no services.
        return {"PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1", "PREFECT_UI_ENABLED": "0"}

    def start(self) -> None:
        """Launch the server; ``wait_until_ready`` blocks until it answers."""
        if self.port is None:
            self.port = free_port(self.host)
        elif not port_is_free(self.port, self.host):
            raise PrefectServerError(f"port {self.port} on {self.host} is taken; choose another "
                                     "or point PREFECT_API_URL at the server that holds it")
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("PREFECT_API_URL", None)
        env.update({"PREFECT_SERVER_ANALYTICS_ENABLED": "false", **self._environment()})
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=env,
                # Its own process group: Ctrl-C reaches the command, which then stops the server
                # and every process the server started, in order.
                start_new_session=True,
                preexec_fn=_parent_death_arming(),
            )
        self._start_watchdog()

    def _start_watchdog(self) -> None:
        reader, self._lifeline = os.pipe()
        try:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(self.process.pid)],
                stdin=reader, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                # Out of the command's process group, so that Ctrl-C leaves it to do its job.
                start_new_session=True,
            )
        finally:
            os.close(reader)

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise PrefectServerError(f"the {self.kind} exited during start-up; "
                                         f"its log: {self.log_file}\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise PrefectServerError(f"the {self.kind} did not answer within {timeout:.0f} s; "
                                 f"its log: {self.log_file}\n{self._log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            # Whatever the server started and left behind goes with it.
            _signal_group(process, signal.SIGKILL)
        self._stop_watchdog()

    def kill(self) -> None:
        """Kill the server and all it started at once, without waiting: for a command ending now."""
        if self.process is not None:
            _signal_group(self.process, signal.SIGKILL)
        if self._watchdog is not None:
            with contextlib.suppress(OSError):
                self._watchdog.kill()

    def _stop_watchdog(self) -> None:
        # Killed before the pipe closes: the server's group is gone, and its id may be reused.
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()
        lifeline, self._lifeline = self._lifeline, None
        if lifeline is not None:
            os.close(lifeline)

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return ""


class PrefectServer(TemporaryPrefectServer):
    """`prefect server start`: API, UI, and the services behind schedules and event triggers."""

    kind = "Prefect server"
    start_timeout = 120.0

    def starting_message(self) -> str:
        return f"starting a local Prefect server (log: {self.log_file})"

    def ready_message(self) -> str | None:
        return f"Prefect UI: {self.ui_url}  (API {self.api_url})"

    def stopping_message(self) -> str | None:
        return "stopping the local Prefect server"

    def _command(self) -> list[str]:
        return [sys.executable, "-m", "prefect", "server", "start", "--host", self.host,
                "--port", str(self.port)]

    def _environment(self) -> dict[str, str]:
        return {}


def _parent_death_arming() -> Callable[[], None] | None:
    """For ``preexec_fn``: the child is killed when this thread ends (Linux), or at once if the
    command is already gone. Only from the main thread, whose end is the command's end."""
    switch = signals.parent_death_switch()
    if switch is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def arm() -> None:
        switch(signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return arm


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
