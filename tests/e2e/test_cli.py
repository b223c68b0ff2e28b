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


def user_environment() -> dict[str, str]:
    """The environment without MLFLOW_TRACKING_URI: mlflow.set_tracking_uri exports it, so tests
    that ran in this process earlier leave another project's store there, unlike a user's shell."""
    return {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}


def mlops(cwd: Path, *args: str, api_url: str) -> subprocess.CompletedProcess[str]:
    env = user_environment() | {"PREFECT_API_URL": api_url}
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
    checked = run("data", "validate", "--use-case", "stock", "--docs", str(good), cwd=clone / "pipelines")
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
    assert "champion: marketing v1" in cycle.stdout
    # No stock candidate is surely better than always-up on the sample: the gate makes no champion.
    assert "no champion yet for stock" in cycle.stdout
    assert "is not surely better than the naive baseline always_up" in cycle.stdout
    assert "always_up" in cycle.stdout and "persistence" in cycle.stdout and "base_rate" in cycle.stdout
    assert "gru" in cycle.stdout and (clone / "mlflow.db").is_file()

    unknown = run("data", "versions", "--use-case", "weather")
    assert unknown.returncode == 1 and "unknown use case 'weather'" in unknown.stderr

    outside = mlops(tmp_path, "data", "pull", api_url=prefect_server_url)
    assert outside.returncode == 1 and "no project found" in outside.stderr


def test_model_commands_end_to_end(clone, prefect_server_url, tmp_path):
    """Registry commands on a clone whose data came from `data pull`; runs after the test above."""
    def run(*args):
        return mlops(clone, *args, api_url=prefect_server_url)

    if not (clone / "data").exists():
        assert run("data", "pull").returncode == 0
    first = run("run", "-u", "marketing", "--candidates", "hist_boosting,xgboost")
    assert first.returncode == 0, first.stderr
    listed = run("models", "list", "marketing")
    assert listed.returncode == 0, listed.stderr
    newest = listed.stdout.splitlines()[2].split()
    assert newest[1] == "challenger"  # the re-run did not beat the champion by the margin
    latest = newest[0].removeprefix("v")

    promoted = run("promote", "marketing", latest, "--reason", "campaign test")
    assert promoted.returncode == 0 and f"champion is now v{latest}" in promoted.stdout
    lineage = run("lineage", "marketing@champion")
    assert lineage.returncode == 0, lineage.stderr
    assert f"marketing v{latest}" in lineage.stdout and "campaign test" in lineage.stdout
    checkout = [line for line in lineage.stdout.splitlines() if "mlops data checkout" in line][0]
    data_version = checkout.split()[-1]

    rolled = run("rollback", "marketing")
    assert rolled.returncode == 0 and f"rolled back from v{latest}" in rolled.stdout
    assert run("promote", "marketing", "999").returncode == 1
    missing = run("lineage", "nosuchmodel@champion")
    assert missing.returncode == 1 and "no registered model 'nosuchmodel'" in missing.stderr
    assert len([line for line in missing.stderr.splitlines() if line.startswith("error:")]) == 1

    restored = run("data", "checkout", data_version)
    assert restored.returncode == 0, restored.stderr
    assert data_version in (clone / "data.dvc").read_text()


def test_ui_serves_the_project_store(clone, tmp_path):
    """`mlops ui` starts the MLflow UI on the clone's store and stops on a signal."""
    import signal
    import socket
    import time
    import urllib.request

    has_models = (clone / "mlflow.db").is_file()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([MLOPS, "ui", "--port", str(port)], cwd=clone, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True,
                              env=user_environment())
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("the MLflow UI did not answer within 90 s")
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/registered-models/search", timeout=5) as reply:
            assert reply.status == 200
            assert not has_models or b"marketing" in reply.read()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(timeout=30)


def test_every_command_has_help():
    for args in ([], ["data"], ["data", "pull"], ["data", "validate"], ["data", "add"],
                 ["data", "versions"], ["data", "checkout"], ["run"], ["models"], ["models", "list"],
                 ["promote"], ["rollback"], ["lineage"], ["ui"]):
        shown = subprocess.run([MLOPS, *args, "--help"], capture_output=True, text=True,
                               check=False)
        assert shown.returncode == 0 and "Usage" in shown.stdout, args
