"""infra/compose/healthcheck.py, the health check of the project image's containers."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from tests.infra.profile import INFRA

SCRIPT = INFRA / "compose" / "healthcheck.py"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def check(*args: str) -> int:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          check=False, timeout=30).returncode


def test_urls_must_answer_2xx(server):
    assert check(f"{server}/health") == 0
    assert check(f"{server}/health", f"{server}/broken") == 1
    assert check("http://127.0.0.1:9/health") == 1  # nothing listens there
    assert check() != 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_process_must_run_the_command(server):
    # A command no other process on this machine runs; its last arguments are the words, as
    # "mlops serve" are those of `/usr/local/bin/python /usr/local/bin/mlops serve --use-case all`.
    command = f"stand-in-{os.getpid()} serve"
    stand_in = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *command.split()])
    try:
        assert check("--process", command) == 0
        assert check("--process", command, f"{server}/health") == 0
        assert check("--process", command, f"{server}/broken") == 1
        assert check("--process", f"{command} --extra") == 1
    finally:
        stand_in.kill()
        stand_in.wait()
    assert check("--process", command) == 1, "the check's own arguments do not count"
