"""Every `mlops` command against the team profile, configured through environment variables alone.

In file order: a cycle registers and promotes on the server; the UI shows it; data versions go to
and come from the S3 remote; `serve` hands retraining to the worker; the registry commands; what a
reader may do; wrong credentials; `doctor`; a changed model file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import git
from tests.integration.batches import STOCK_BATCH, write
from tests.integration.test_serve import customers, drop, wait_for
from tests.team.conftest import MLOPS, chromium, client_environment, mlops, one_line_error

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.team]

MODEL = "marketing"


@pytest.fixture(scope="module")
def site(pulled_template, tmp_path_factory, team) -> Path:
    """A clone whose marketing use case trains two quick candidates, committed to git."""
    root = tmp_path_factory.mktemp("team-site") / "project"
    shutil.copytree(pulled_template, root, symlinks=True)
    path = root / "pipelines" / "usecases" / "marketing.yaml"
    marketing = yaml.safe_load(path.read_text())
    marketing["candidates"] = {"linear": {}, "xgboost": {}}
    path.write_text(yaml.safe_dump(marketing, sort_keys=False))
    git(root, "add", "-A")
    git(root, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "quick")
    return root


@pytest.fixture(scope="module")
def env(team):
    return client_environment(team)


@pytest.fixture(scope="module")
def admin(team):
    """An MlflowClient signed in as the admin (MLflow reads the credentials from the environment)."""
    from mlflow import MlflowClient

    saved = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update(MLFLOW_TRACKING_USERNAME="admin",
                      MLFLOW_TRACKING_PASSWORD=team.secrets["mlflow_admin_password"])
    yield MlflowClient(tracking_uri=team.mlflow_url, registry_uri=team.mlflow_url)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def s3(team):
    import boto3

    return boto3.client("s3", endpoint_url=team.s3_url, aws_access_key_id=team.secrets["s3_access_key"],
                        aws_secret_access_key=team.secrets["s3_secret_key"], region_name="us-east-1")


def keys(team, bucket: str, prefix: str = "") -> list[str]:
    pages = s3(team).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def test_a_cycle_registers_and_promotes_on_the_server(team, admin, site, env):
    done = mlops(site, env, "run", "--use-case", MODEL)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"champion: {MODEL} v1" in done.stdout
    assert f"{team.mlflow_url}/#/experiments/" in done.stdout
    assert "workflowType=machine_learning" in done.stdout
    assert "View run" not in done.stdout  # MLflow's own links are not repeated per run

    client = admin
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == "1" and len(champion.tags["model_sha256"]) == 64
    assert champion.source.startswith("models:/m-")
    experiment = client.get_experiment_by_name(MODEL)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"].startswith("Propensity to buy")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")
    stored = keys(team, "mlflow", f"{team.prefix}/{experiment.experiment_id}/")
    assert any(key.endswith("/artifacts/model.pkl") for key in stored), stored[:20]
    assert any(key.endswith("plots/leaderboard.png") for key in stored), stored[:20]


RESOLVE_EXPERIMENT = """
import sys
from pipelines.adapters.tracker import Tracker
from pipelines.config.project import Project
print(Tracker(Project(sys.argv[1])).experiment_id(sys.argv[2], "raced"))
"""


@pytest.mark.parametrize("attempt", range(3))
def test_two_processes_creating_one_experiment_get_the_same_one(team, site, env, attempt):
    """Under basic auth the loser of the race used to be refused (403) instead of finding it."""
    name = f"race-{attempt}"
    racers = [subprocess.Popen([sys.executable, "-c", RESOLVE_EXPERIMENT, str(site), name], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [racer.communicate(timeout=120) for racer in racers]
    assert all(racer.returncode == 0 for racer in racers), [err[-2000:] for _, err in results]
    assert len({out.strip() for out, _ in results}) == 1


def test_the_mlflow_ui_shows_the_training_runs(team, admin, site, tmp_path):
    """One page of the server's UI in headless Chromium, signed in as a user."""
    executable = chromium()
    from playwright.sync_api import sync_playwright

    experiment = admin.get_experiment_by_name(MODEL)
    url = f"{team.mlflow_url}/#/experiments/{experiment.experiment_id}/runs?workflowType=machine_learning"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"])
        try:
            context = browser.new_context(http_credentials={
                "username": "admin", "password": team.secrets["mlflow_admin_password"]})
            page = context.new_page()
            page.goto(url, wait_until="load")
            page.get_by_text("cycle 20").first.wait_for(timeout=60_000)
            text = page.inner_text("body")
            page.screenshot(path=str(tmp_path / "mlflow-ui.png"))
        finally:
            browser.close()
    assert "Propensity to buy caravan insurance" in text  # the use case's description
    assert "Runs" in text and "Model training" in text


def test_data_add_pushes_to_s3_and_a_fresh_clone_pulls_it(team, site, env, tmp_path):
    batch = write(STOCK_BATCH, tmp_path / "bars.csv")
    added = mlops(site, env, "data", "add", "--use-case", "stock", str(batch))
    assert added.returncode == 0, added.stdout[-2000:] + added.stderr[-2000:]
    assert keys(team, "dvc", f"{team.prefix}/"), "nothing was pushed to the S3 remote"
    assert "env" in (site / ".dvc" / "config.local").read_text()
    git(site, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qam", "bars")

    fresh = tmp_path / "fresh"
    subprocess.run(["git", "clone", "-q", str(site), str(fresh)], check=True)
    pulled = mlops(fresh, env, "data", "pull")
    assert pulled.returncode == 0, pulled.stderr[-2000:]
    assert (fresh / "data" / "stock.csv").read_bytes() == (site / "data" / "stock.csv").read_bytes()
    # Only the S3 remote holds the new version: the clone's own remotes have the shipped one.
    assert not (fresh / ".dvc" / "storage").exists()


def finished_retraining_runs(team) -> list:
    """The retrain deployment's flow runs that have ended, oldest first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    async def read():
        async with get_client() as client:
            found = await client.read_flow_runs(deployment_filter=DeploymentFilter(
                name=DeploymentFilterName(any_=[f"retrain-{MODEL}"])))
            return sorted((r for r in found if r.state and r.state.is_final()), key=lambda r: r.created)

    with temporary_settings({PREFECT_API_URL: team.prefect_url,
                             PREFECT_API_AUTH_STRING: team.secrets["prefect_auth_string"]}):
        return asyncio.run(read())


def test_serve_hands_a_landed_file_to_the_worker(team, admin, site, env, tmp_path):
    log = (tmp_path / "serve.log").open("w")
    served = subprocess.Popen([MLOPS, "serve", "--poll", "1", "--use-case", MODEL], cwd=site, env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    output = (tmp_path / "serve.log").read_text
    try:
        wait_for(lambda: "Ctrl-C stops everything" in output() or served.poll() is not None,
                 "mlops serve to start", timeout=180)
        assert served.poll() is None, output()
        assert f"deployed retrain/retrain-{MODEL} on work pool 'mlops'" in output()
        drop(site, MODEL, "new-customers.csv", customers(site, 40, "team"))
        finished = wait_for(lambda: finished_retraining_runs(team), "the worker's retraining run",
                            timeout=420, every=3)
        assert finished[0].state.is_completed(), finished[0].state
        assert finished[0].work_pool_name == "mlops"
        assert "new data: new-customers.csv" in finished[0].parameters["trigger"]
    finally:
        if served.poll() is None:
            served.send_signal(signal.SIGINT)
            try:
                assert served.wait(timeout=120) == 0, output()[-3000:]
            finally:
                # Whatever the outcome, nothing the test started may outlive it.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(served.pid, signal.SIGKILL)
        log.close()
    versions = admin.search_model_versions(f"name='{MODEL}'")
    assert len(versions) >= 2, "the worker's run registered no new version"


def test_the_worker_runs_the_landing_and_prediction_deployments(team, site, tmp_path):
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    before = len(finished_retraining_runs(team))
    batch = write(customers(site, 30, "deployed", seed=3), tmp_path / "deployed.csv")
    scored = tmp_path / "scored-by-worker.csv"
    with temporary_settings({PREFECT_API_URL: team.prefect_url,
                             PREFECT_API_AUTH_STRING: team.secrets["prefect_auth_string"]}):
        landed = run_deployment(f"land-file/land-{MODEL}", parameters={"path": str(batch)}, timeout=300)
        rows = write(customers(site, 10, "to-score", seed=4).drop(columns=["Purchase"]), tmp_path / "in.csv")
        predicted = run_deployment(f"predict/predict-{MODEL}",
                                   parameters={"path": str(rows), "output": str(scored)}, timeout=300)
    assert landed.state.is_completed(), landed.state
    assert "deployed.csv" in (site / "data.dvc").read_text()
    # The new data version triggers a retraining on the worker: let it end before the next test.
    wait_for(lambda: len(finished_retraining_runs(team)) >= before + 1, "the triggered retraining",
             timeout=420, every=3)
    assert predicted.state.is_completed(), predicted.state
    assert len(pd.read_csv(scored)) == 10


def test_registry_commands_on_the_server(team, site, env, tmp_path):
    listed = mlops(site, env, "models", "list", MODEL)
    assert listed.returncode == 0, listed.stderr
    newest = listed.stdout.splitlines()[2].split()[0].removeprefix("v")
    promoted = mlops(site, env, "promote", MODEL, newest, "--reason", "team test")
    assert promoted.returncode == 0 and f"champion is now v{newest}" in promoted.stdout, promoted.stderr
    lineage = mlops(site, env, "lineage", f"{MODEL}@champion")
    assert lineage.returncode == 0 and "team test" in lineage.stdout, lineage.stderr
    rolled = mlops(site, env, "rollback", MODEL)
    assert rolled.returncode == 0 and f"rolled back from v{newest}" in rolled.stdout, rolled.stderr
    rows = pd.read_csv(site / "data" / "marketing.csv", dtype={"customer_id": str}).head(20)
    predicted = mlops(site, env, "predict", "--use-case", MODEL, str(write(rows, tmp_path / "score.csv")),
                      "--output", str(tmp_path / "scored.csv"))
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert len(pd.read_csv(tmp_path / "scored.csv")) == 20


def test_a_reader_lists_and_predicts_but_cannot_promote(team, admin, site, tmp_path):
    team.add_mlflow_user("reader", "reader-password-1")
    reader = client_environment(team, MLFLOW_TRACKING_USERNAME="reader",
                                MLFLOW_TRACKING_PASSWORD="reader-password-1")
    assert mlops(site, reader, "models", "list", MODEL).returncode == 0
    rows = pd.read_csv(site / "data" / "marketing.csv", dtype={"customer_id": str}).head(5)
    predicted = mlops(site, reader, "predict", "--use-case", MODEL, str(write(rows, tmp_path / "in.csv")),
                      "--output", str(tmp_path / "out.csv"))
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    champion = admin.get_model_version_by_alias(MODEL, "champion").version
    other = next(v.version for v in admin.search_model_versions(f"name='{MODEL}'") if v.version != champion)
    refused = mlops(site, reader, "promote", MODEL, other, "--reason", "not mine")
    assert refused.returncode == 4
    assert "user 'reader' may not do this" in one_line_error(refused)
    assert admin.get_model_version_by_alias(MODEL, "champion").version == champion

    team.grant_mlflow_permission("reader", "registered_model", MODEL, "MANAGE")
    granted = mlops(site, reader, "promote", MODEL, other, "--reason", "granted")
    assert granted.returncode == 0, granted.stderr[-2000:]
    assert admin.get_model_version_by_alias(MODEL, "champion").version == other


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"MLFLOW_TRACKING_PASSWORD": "wrong-password"}, "refused the credentials (user 'admin'"),
    ({"MLFLOW_TRACKING_USERNAME": None, "MLFLOW_TRACKING_PASSWORD": None},
     "refused the credentials (no MLFLOW_TRACKING_USERNAME)"),
])
def test_wrong_or_missing_mlflow_credentials_are_one_line(team, site, overrides, expected):
    done = mlops(site, client_environment(team, **overrides), "models", "list", MODEL, timeout=120)
    assert done.returncode == 3
    line = one_line_error(done)
    assert expected in line and team.mlflow_url in line


@pytest.mark.parametrize(("auth", "expected"), [("admin:wrong", "(PREFECT_API_AUTH_STRING)"),
                                                (None, "(no PREFECT_API_AUTH_STRING)")])
def test_a_wrong_or_missing_prefect_auth_string_is_one_line(team, site, auth, expected):
    env = client_environment(team, PREFECT_API_AUTH_STRING=auth)
    done = mlops(site, env, "run", "--use-case", MODEL, timeout=120)
    assert done.returncode == 3
    line = one_line_error(done)
    assert f"Prefect at {team.prefect_url} refused the credentials {expected}" in line


def test_doctor_checks_every_backend(team, site, env):
    healthy = mlops(site, env, "doctor")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    for backend in ("tracking", "registry", "artifacts", "prefect", "work pool", "dvc remote"):
        assert any(line.startswith(backend) for line in healthy.stdout.splitlines()), healthy.stdout
    assert "all backends answer" in healthy.stdout

    broken = mlops(site, client_environment(team, AWS_SECRET_ACCESS_KEY="wrong-secret",
                                            PREFECT_API_AUTH_STRING="admin:wrong"), "doctor")
    assert broken.returncode == 1
    assert "dvc remote: the remote refused the credentials" in broken.stdout
    assert "prefect: Prefect at" in broken.stdout and "Traceback" not in broken.stdout + broken.stderr


def test_a_changed_model_file_is_refused(team, admin, site, env, tmp_path):
    client = admin
    champion = client.get_model_version_by_alias(MODEL, "champion")
    model_id = champion.source.removeprefix("models:/")
    experiment = client.get_experiment_by_name(MODEL).experiment_id
    key = f"{team.prefix}/{experiment}/models/{model_id}/artifacts/model.pkl"
    store = s3(team)
    original = store.get_object(Bucket="mlflow", Key=key)["Body"].read()
    store.put_object(Bucket="mlflow", Key=key, Body=original + b"\0")
    try:
        rows = pd.read_csv(site / "data" / "marketing.csv", dtype={"customer_id": str}).head(5)
        done = mlops(site, env, "predict", "--use-case", MODEL, str(write(rows, tmp_path / "in.csv")))
        assert done.returncode == 1
        assert "its files changed after registration" in one_line_error(done)
    finally:
        store.put_object(Bucket="mlflow", Key=key, Body=original)


def test_the_local_profile_keeps_its_secrets_private(team):
    for name in ("secrets.json", "client.env", "mlflow-auth.ini"):
        path = team.folder / name
        if name == "client.env":
            team.write_client_env()
        assert path.stat().st_mode & 0o777 == 0o600, name
    assert json.loads((team.folder / "secrets.json").read_text())["mlflow_admin_password"]


def test_candidates_on_dask_log_to_the_server_with_the_users_credentials(team, admin, site, env, tmp_path):
    """Workers with none of the user's environment: the cycle hands them the store and credentials."""
    from tests.integration.test_dask import Cluster, candidate_runs

    cluster = Cluster(tmp_path / "dask", {})
    try:
        cluster.start()
        done = mlops(site, env | {"MLOPS_DASK_ADDRESS": cluster.address}, "run", "--use-case", MODEL)
    finally:
        cluster.stop()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    experiment = admin.get_experiment_by_name(MODEL)
    cycle = admin.search_runs([experiment.experiment_id], "tags.run_role = 'cycle'",
                              order_by=["attributes.start_time DESC"], max_results=1)[0]
    runs = candidate_runs(admin, MODEL, cycle.info.run_id)
    assert set(runs) == {"linear", "xgboost"}
    pids = {run.data.tags["worker"].rsplit(":", 1)[1] for run in runs.values()}
    assert pids <= cluster.worker_pids() and len(pids) == 2
    assert all(run.info.status == "FINISHED" and run.outputs.model_outputs for run in runs.values())
    assert [p for p in cluster.root.rglob("*") if p.name in ("mlflow.db", "mlruns")] == []
