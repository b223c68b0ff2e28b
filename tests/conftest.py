"""Shared fixtures: a real project (git + DVC) in a temporary folder, one Prefect test server."""

from __future__ import annotations

import os
import shutil
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
})

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
def prefect_server():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def pulled_template(tmp_path_factory) -> Path:
    """A fresh clone's files in a new git repository, with data/ pulled from the sample remote."""
    from pipelines.project import Project
    from pipelines.versioning import DataVersions

    root = copy_project_files(tmp_path_factory.mktemp("template") / "project")
    git(root, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "init")
    DataVersions(Project(root)).pull()
    return root


@pytest.fixture
def project(pulled_template: Path, tmp_path: Path):
    """A private copy of the pulled project for one test."""
    from pipelines.project import Project

    root = tmp_path / "project"
    shutil.copytree(pulled_template, root, symlinks=True)
    return Project(root)
