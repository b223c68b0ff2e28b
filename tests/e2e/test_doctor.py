"""`mlops doctor` on the embedded default, and with a server that is not there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_project_files
from tests.e2e.test_cli import user_environment

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MLOPS = str(Path(sys.executable).parent / "mlops")


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    return copy_project_files(tmp_path_factory.mktemp("doctor") / "project")


def doctor(clone: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in user_environment().items() if k != "PREFECT_API_URL"}
    return subprocess.run([MLOPS, "doctor"], cwd=clone, env=base | env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_the_embedded_default_is_all_well(clone):
    done = doctor(clone)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line for line in done.stdout.splitlines()[1:] if line.strip()}
    assert "(embedded)" in rows["tracking"] and "mlflow.db" in rows["tracking"]
    assert "temporary local server per command" in rows["prefect"]
    assert "local:" in done.stdout and "dask" not in rows
    assert done.stdout.rstrip().endswith("all backends answer")


def test_a_server_that_is_not_there_is_a_hint_and_exit_1(clone):
    done = doctor(clone, MLFLOW_TRACKING_URI="http://127.0.0.1:9", PREFECT_API_URL="http://127.0.0.1:9/api",
                  MLOPS_DASK_ADDRESS="tcp://127.0.0.1:9", MLOPS_SERVICE_TIMEOUT="2")
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert "tracking: unreachable" in done.stdout
    assert "prefect: Prefect at http://127.0.0.1:9/api is unreachable" in done.stdout
    assert "dask: cannot connect" in done.stdout
