"""The `mlops` command as a user runs it, in a fresh clone without data/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import copy_project_files
from tests.integration.batches import STOCK_BATCH, STOCK_SPOILERS, write

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MLOPS = str(Path(sys.executable).parent / "mlops")


@pytest.fixture(scope="module")
def clone(tmp_path_factory, prefect_server_url) -> Path:
    return copy_project_files(tmp_path_factory.mktemp("clone") / "project")


@pytest.fixture(scope="module")
def prefect_server_url(request):
    request.getfixturevalue("prefect_server")
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def mlops(cwd: Path, *args: str, api_url: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PREFECT_API_URL": api_url}
    return subprocess.run([MLOPS, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_data_commands_end_to_end(clone, prefect_server_url, tmp_path):
    def run(*args, cwd=clone):
        return mlops(cwd, *args, api_url=prefect_server_url)

    assert not (clone / "data").exists()
    pulled = run("data", "pull")
    assert pulled.returncode == 0, pulled.stderr
    assert "dvc status: clean" in pulled.stdout
    assert (clone / "data" / "stock.csv").is_file()

    good = write(STOCK_BATCH, tmp_path / "good.csv")
    checked = run("data", "validate", "--use-case", "stock", str(good), cwd=clone / "pipelines")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "passed all" in checked.stdout and "Data Docs:" in checked.stdout
    docs = checked.stdout.split("Data Docs: ")[1].strip()
    assert Path(docs).is_file()

    spoil, expected = STOCK_SPOILERS["High below Low"]
    bad = write(spoil(STOCK_BATCH), tmp_path / "bad.csv")
    rejected = run("data", "validate", "-u", "stock", str(bad))
    assert rejected.returncode == 1
    assert expected in rejected.stdout and "1 bad row(s)" in rejected.stdout

    added = run("data", "add", "--use-case", "stock", str(good))
    assert added.returncode == 0, added.stdout + added.stderr
    version = added.stdout.strip().splitlines()[-1].removeprefix("data version ")
    assert version.endswith(".dir") and version in (clone / "data.dvc").read_text()

    refused = run("data", "add", "--use-case", "stock", str(bad))
    assert refused.returncode == 1
    reason = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert len(reason) == 1 and expected in reason[0]

    listed = run("data", "versions", "--use-case", "stock")
    assert listed.returncode == 0
    lines = listed.stdout.strip().splitlines()
    assert len(lines) == 3 and "good.csv" in lines[-1] and "(current)" in lines[-1]
    assert "12157" in lines[-1]

    cycle = run("run", "--use-case", "all")
    assert cycle.returncode == 0, cycle.stderr
    assert f"stock: 12157 rows, data version {version}" in cycle.stdout

    unknown = run("data", "versions", "--use-case", "weather")
    assert unknown.returncode == 1 and "unknown use case 'weather'" in unknown.stderr

    outside = mlops(tmp_path, "data", "pull", api_url=prefect_server_url)
    assert outside.returncode == 1 and "no project found" in outside.stderr


def test_every_command_has_help():
    for args in ([], ["data"], ["data", "pull"], ["data", "validate"], ["data", "add"],
                 ["data", "versions"], ["run"]):
        shown = subprocess.run([MLOPS, *args, "--help"], capture_output=True, text=True,
                               check=False)
        assert shown.returncode == 0 and "Usage" in shown.stdout, args
