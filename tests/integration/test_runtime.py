"""The temporary Prefect server a command starts when no PREFECT_API_URL is set."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys
from prefect import flow
from prefect.client.orchestration import get_client
from pipelines.adapters import runtime

@flow(name="hello")
def hello() -> int:
    return 42

with runtime.prefect_api(["json"], __import__("pathlib").Path(sys.argv[1]), notify=print) as url:
    result = hello()
    with get_client(sync_client=True) as client:
        runs = [run.name for run in client.read_flow_runs()]
print(json.dumps({"url": url, "result": result, "runs": len(runs)}))
"""


def test_temporary_server_serves_the_flow_runs_and_stops(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    # A private Prefect home: the server's database is created fresh, not shared with the tests'.
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "server.log")], env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    notice, summary = done.stdout.strip().splitlines()[0], json.loads(done.stdout.strip().splitlines()[-1])
    assert notice.startswith("temporary Prefect server on http://127.0.0.1:")
    assert summary["result"] == 42 and summary["runs"] == 1
    port = int(summary["url"].split(":")[2].split("/")[0])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the server still listens after the block"


def test_a_server_that_cannot_start_is_reported_with_its_log(tmp_path, monkeypatch):
    from pipelines.adapters.prefect_server import PrefectServerError, TemporaryPrefectServer

    monkeypatch.setenv("PREFECT_SERVER_DATABASE_CONNECTION_URL",
                       "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    server = TemporaryPrefectServer(tmp_path / "server.log")
    server.start()
    try:
        with pytest.raises(PrefectServerError, match="temporary Prefect server .*its log: "):
            server.wait_until_ready(timeout=30)
    finally:
        server.stop()
    assert server.process is None
