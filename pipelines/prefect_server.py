"""A Prefect API server in a child process, on a free local port.

The temporary kind serves the flow runs of one command, like Prefect's own temporary server, but
starts without importing Prefect's server code into the command's process, so the command can
load its own libraries while the server boots.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipelines.errors import MlopsError

HOST = "127.0.0.1"


class PrefectServerError(MlopsError):
    """The local Prefect server did not start."""


def free_port(host: str = HOST) -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class TemporaryPrefectServer:
    """Prefect's API without its UI or background services, for one command's flow runs."""

    def __init__(self, log_file: Path, host: str = HOST) -> None:
        self.host = host
        self.port: int | None = None
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def start(self) -> None:
        """Launch the server; ``wait_until_ready`` blocks until it answers."""
        self.port = free_port(self.host)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ,
               # The switches Prefect sets for its own temporary server: API only, no services.
               "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1", "PREFECT_UI_ENABLED": "0"}
        env.pop("PREFECT_API_URL", None)
        with self.log_file.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app",
                 "--host", self.host, "--port", str(self.port), "--log-level", "error", "--lifespan", "on"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                # Its own session: Ctrl-C reaches the command, which then stops the server in order.
                start_new_session=True,
            )

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise PrefectServerError(f"the temporary Prefect server exited during start-up; "
                                         f"its log: {self.log_file}\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise PrefectServerError(f"the temporary Prefect server did not answer within {timeout:.0f} s; "
                                 f"its log: {self.log_file}\n{self._log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return ""
