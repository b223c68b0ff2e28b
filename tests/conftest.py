"""Shared fixtures: a real project (git + DVC) in a temporary folder, one Prefect test server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.update({
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
    "DVC_NO_ANALYTICS": "true",
    "GX_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # Cycles train at their declared hyperparameters unless a test turns the search on: a minute
    # of tuning per candidate would make every cycle in the suite slow. Tests of tuning set it.
    "MLOPS_TUNING": "false",
})

# A suite started in the background of a non-interactive shell (`nohup`, `cmd &`) inherits SIGINT
# ignored, and so would every `mlops` it starts: the tests that stop `mlops serve` with Ctrl-C
# would wait for nothing. A handler here is reset to the default in each child at exec.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# What a clone carries that the data layer needs; data/ itself comes from the DVC remote.
PROJECT_FILES = [
    "data.dvc", ".dvcignore", ".gitignore", ".dvc/config", ".dvc/.gitignore",
    "pipelines/usecases", "pipelines/expectations", "infra/sample-data/dvc-remote",
]


def copy_project_files(root: Path) -> Path:
    """Lay out what a fresh clone holds (no data/) under ``root`` and make it a git repository."""
    for name in PROJECT_FILES:
        source, target = REPO / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    git(root, "init", "-q")
    git(root, "add", "-A")
    return root


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    """One real `prefect server start` (schedules, triggers, UI) for the session, on a fresh database."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.adapters.prefect_server import PrefectServer

    home = tmp_path_factory.mktemp("prefect-home")
    saved = {name: os.environ.get(name) for name in ("PREFECT_HOME", "PREFECT_API_URL")}
    os.environ["PREFECT_HOME"] = str(home)
    server = PrefectServer(home / "server.log")
    server.start()
    try:
        server.wait_until_ready(timeout=180)
        # Child processes (the mlops command, flow runs) find it through the environment.
        os.environ["PREFECT_API_URL"] = server.api_url
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield server.api_url
            from pipelines.adapters import runtime

            runtime.drain_prefect()
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="session")
def pulled_template(tmp_path_factory) -> Path:
    """A fresh clone's files in a new git repository, with data/ pulled from the sample remote."""
    from pipelines.adapters.dvc import DataVersions
    from pipelines.config.project import Project

    root = copy_project_files(tmp_path_factory.mktemp("template") / "project")
    git(root, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "init")
    DataVersions(Project(root)).pull()
    return root


@pytest.fixture
def project(pulled_template: Path, tmp_path: Path):
    """A private copy of the pulled project for one test."""
    from pipelines.config.project import Project

    root = tmp_path / "project"
    shutil.copytree(pulled_template, root, symlinks=True)
    return Project(root)
