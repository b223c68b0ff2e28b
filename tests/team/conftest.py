"""The team profile, started once for the session as local processes with the Compose file's settings.

It needs the PostgreSQL server on 127.0.0.1:5432 (trust auth for the admin role); its databases and
roles are created for the session and dropped afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

MLOPS = str(Path(sys.executable).parent / "mlops")
# Variables of the session's own Prefect server and MLflow store that a team client must not see.
_EMBEDDED = ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "PREFECT_HOME", "MLOPS_WORK_POOL", "MLOPS_DVC_REMOTE")


def load_team_module():
    """``infra/local/team.py`` (not a package: it is a script) as the module ``team_local``."""
    spec = importlib.util.spec_from_file_location("team_local", REPO / "infra" / "local" / "team.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["team_local"] = module
    spec.loader.exec_module(module)
    return module


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def team(tmp_path_factory):
    """PostgreSQL databases, SeaweedFS, MLflow (basic auth), Prefect (auth string), a worker."""
    if not _postgres_answers():
        if os.environ.get("CI"):
            pytest.fail("the team-profile tests need PostgreSQL on 127.0.0.1:5432")
        pytest.skip("no PostgreSQL on 127.0.0.1:5432 (the team-profile tests start it nowhere)")
    local = load_team_module()
    profile = local.TeamProfile(tmp_path_factory.mktemp("team"), prefix=f"mlops_test_{os.getpid()}",
                                ports=local.Ports.free())
    try:
        profile.up(notify=lambda message: None)
        yield profile
    finally:
        profile.down()
        profile.drop_databases()


def client_environment(team, **overrides: str | None) -> dict[str, str]:
    """A user's shell set up for the team profile; an override of None removes the variable."""
    env = {k: v for k, v in os.environ.items() if k not in _EMBEDDED}
    env |= team.client_env() | {"MLOPS_SERVICE_TIMEOUT": "10"}
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def mlops(cwd: Path, env: dict[str, str], *args: str,
          timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MLOPS, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    """The command's error, checked to be one line and no traceback."""
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]


def chromium() -> str:
    """Debian's Chromium; in CI it is installed when missing (the project's browser check needs it)."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.environ.get("CI") and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, capture_output=True,
                       env=os.environ | {"DEBIAN_FRONTEND": "noninteractive"}, timeout=600)
        found = shutil.which("chromium")
        if found:
            return found
    pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
