"""`mlops serve` against the session's real Prefect server: files in, models out.

The project has two use cases on the marketing data, each trained with the fast linear candidate:
``marketing`` retrains on every accepted file, ``campaign`` only when a file drifts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import git
from tests.integration.batches import MARKETING_SPOILERS

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MLOPS = str(Path(sys.executable).parent / "mlops")
WAIT = 240


def wait_for(predicate, what: str, timeout: float = WAIT, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def customers(root: Path, rows: int, tag: str, seed: int = 0) -> pd.DataFrame:
    """Real customer rows (a random sample) under new pseudonymous keys."""
    frame = pd.read_csv(root / "data" / "marketing.csv", dtype={"customer_id": str})
    sample = frame.sample(rows, random_state=seed).reset_index(drop=True)
    sample["customer_id"] = ["N" + hashlib.sha256(f"{tag}-{i}".encode()).hexdigest()[:12]
                             for i in range(rows)]
    return sample


def drop(root: Path, use_case: str, name: str, frame: pd.DataFrame, age: float = 30.0) -> Path:
    """Write into the landing zone the way a copy tool would: under a partial name, then renamed."""
    folder = root / "data" / "incoming" / use_case
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f"{name}.part"
    frame.to_csv(partial, index=False)
    target = partial.rename(folder / name)
    stamp = time.time() - age
    os.utime(target, (stamp, stamp))
    return target


def landed_records(root: Path, use_case: str) -> list[dict]:
    folder = root / "data" / "landed" / use_case
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.record.json"))]


def model_versions(root: Path, model: str) -> list:
    from mlflow import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return sorted(client.search_model_versions(f"name='{model}'"), key=lambda v: int(v.version))


def retrain_deployment(use_case: str):
    """The served deployment, once the runner has registered it (just after `serve` says it watches)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    def read():
        with get_client(sync_client=True) as client:
            try:
                return client.read_deployment_by_name(f"retrain/retrain-{use_case}")
            except ObjectNotFound:
                return None

    return wait_for(read, f"deployment retrain-{use_case}", timeout=60)


def retrain_runs(use_case: str) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    deployment = retrain_deployment(use_case)
    with get_client(sync_client=True) as client:
        only_this = DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        return client.read_flow_runs(deployment_filter=only_this)


def finished(runs: list) -> bool:
    return all(run.state is not None and run.state.is_final() for run in runs)


def environment(api_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL")}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env | {"PREFECT_LOGGING_LEVEL": "INFO"}


class Served:
    """A running `mlops serve`, in its own process group so that every child can be checked."""

    def __init__(self, root: Path, log: Path, env: dict[str, str], *args: str) -> None:
        self.log = log
        self.stream = log.open("w")
        self.process = subprocess.Popen([MLOPS, "serve", "--poll", "1", *args], cwd=root, env=env,
                                        stdout=self.stream, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        wait_for(lambda: "Ctrl-C stops everything" in self.output() or self.process.poll() is not None,
                 "mlops serve to start", timeout=180)
        assert self.process.poll() is None, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it to the foreground process group; returns the exit code."""
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # The test fails either way; nothing it started may outlive it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise
        finally:
            self.stream.close()
        return code

    def group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True


@pytest.fixture(scope="module")
def site(pulled_template, tmp_path_factory, prefect_server) -> Path:
    """A project with champions (with drift references) for marketing and campaign."""
    from pipelines.adapters.dvc import DataVersions
    from pipelines.config.project import Project

    root = tmp_path_factory.mktemp("served") / "project"
    shutil.copytree(pulled_template, root, symlinks=True)
    usecases = root / "pipelines" / "usecases"
    (usecases / "stock.yaml").unlink()
    marketing = yaml.safe_load((usecases / "marketing.yaml").read_text())
    marketing["candidates"] = {"linear": {}}
    (usecases / "marketing.yaml").write_text(yaml.safe_dump(marketing, sort_keys=False))
    campaign = {**marketing, "name": "campaign", "dataset": "campaign.csv", "registered_model": "campaign",
                "retraining": {**marketing["retraining"], "on_new_data": "drift", "drift_min_rows": 200}}
    (usecases / "campaign.yaml").write_text(yaml.safe_dump(campaign, sort_keys=False))
    shutil.copy2(root / "data" / "marketing.csv", root / "data" / "campaign.csv")
    DataVersions(Project(root)).record(["campaign"], {"campaign": 5822}, "campaign.csv")
    git(root, "add", "-A")
    git(root, "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "campaign")
    trained = subprocess.run([MLOPS, "run", "--use-case", "all"], cwd=root, env=environment(prefect_server),
                             capture_output=True, text=True, timeout=600, check=False)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def served(site, prefect_server, tmp_path_factory):
    running = Served(site, tmp_path_factory.mktemp("serve-log") / "serve.log", environment(prefect_server))
    yield running
    if running.process.poll() is None:
        running.interrupt()


def test_deployments_carry_schedule_trigger_and_limit(served):
    deployment = retrain_deployment("marketing")
    assert [s.schedule.cron for s in deployment.schedules] == ["0 6 * * 1"]
    limit = deployment.global_concurrency_limit
    assert limit is not None and limit.limit == 1


def test_a_valid_file_becomes_a_new_model_version(site, served):
    before = len(model_versions(site, "marketing"))
    drop(site, "marketing", "customers-1.csv", customers(site, 250, "valid"))
    versions = wait_for(lambda: (v := model_versions(site, "marketing")) and len(v) > before and v,
                        "a new marketing model version")
    record = landed_records(site, "marketing")[-1]
    assert record["status"] == "accepted" and record["source"] == "customers-1.csv"
    assert versions[-1].tags["data_version"] == record["data_version"]
    assert record["drift"]["measured"] and not record["drift"]["drifted"]
    assert not list((site / "data" / "incoming" / "marketing").iterdir())
    wait_for(lambda: finished(retrain_runs("marketing")), "the retraining run to finish")


def test_a_bad_file_is_quarantined_and_starts_nothing(site, served):
    spoil, _ = MARKETING_SPOILERS["target outside Yes/No"]
    runs_before = len(retrain_runs("marketing"))
    versions_before = len(model_versions(site, "marketing"))
    drop(site, "marketing", "broken.csv", spoil(customers(site, 20, "broken")))
    quarantine = site / "data" / "quarantine"
    wait_for(lambda: any(p.name.endswith("broken.csv") for p in quarantine.glob("*")), "quarantine")
    report = next(p for p in quarantine.glob("*broken.csv.report.txt"))
    assert "Purchase must be one of the allowed values" in report.read_text()
    wait_for(lambda: not (site / "data" / "incoming" / "marketing" / "broken.csv").exists(),
             "the file to leave the landing zone")
    time.sleep(8)
    assert len(retrain_runs("marketing")) == runs_before
    assert len(model_versions(site, "marketing")) == versions_before


def test_a_burst_lands_in_order_and_never_trains_twice_at_once(site, served):
    from pipelines.adapters.dvc import DataVersions
    from pipelines.config.project import Project

    landed_before = len(landed_records(site, "marketing"))
    runs_before = {run.id for run in retrain_runs("marketing")}
    for number in (1, 2, 3):
        drop(site, "marketing", f"burst-{number}.csv", customers(site, 30, f"burst-{number}", seed=number),
             age=60 - number)
    records = wait_for(lambda: (r := landed_records(site, "marketing")) and len(r) >= landed_before + 3 and r,
                       "three landed files")[landed_before:]
    assert [r["source"] for r in records] == ["burst-1.csv", "burst-2.csv", "burst-3.csv"]
    ledger = DataVersions(Project(site)).history()[-3:]
    assert [entry.source for entry in ledger] == ["burst-1.csv", "burst-2.csv", "burst-3.csv"]
    assert [entry.version for entry in ledger] == [r["data_version"] for r in records]

    new_runs = wait_for(lambda: (runs := [r for r in retrain_runs("marketing") if r.id not in runs_before])
                        and len(runs) == 3 and finished(runs) and runs, "three finished retraining runs")
    spans = sorted((run.start_time, run.end_time) for run in new_runs if run.start_time)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, "two retraining runs of one use case overlapped"
    trained = [v.tags["data_version"] for v in model_versions(site, "marketing")]
    assert len(trained) == len(set(trained)), "a data version was trained on twice"
    assert ledger[-1].version in trained


def test_drift_triggers_retraining_off_schedule(site, served):
    before = len(model_versions(site, "campaign"))
    runs_before = len(retrain_runs("campaign"))
    drop(site, "campaign", "ordinary.csv", customers(site, 300, "ordinary", seed=7))
    record = wait_for(lambda: [r for r in landed_records(site, "campaign") if r["source"] == "ordinary.csv"],
                      "the ordinary file to land")[0]
    assert record["drift"]["measured"] and not record["drift"]["drifted"], record["drift"]["summary"]
    time.sleep(8)
    assert len(retrain_runs("campaign")) == runs_before

    shifted = customers(site, 300, "shifted", seed=8)
    shifted["MOSTYPE"] = shifted["MOSTYPE"].iloc[0]
    drop(site, "campaign", "shifted.csv", shifted)
    record = wait_for(lambda: [r for r in landed_records(site, "campaign") if r["source"] == "shifted.csv"],
                      "the shifted file to land")[0]
    assert record["drift"]["drifted"] and "MOSTYPE" in record["drift"]["summary"]
    versions = wait_for(lambda: (v := model_versions(site, "campaign")) and len(v) > before and v,
                        "a campaign model version trained because of drift")
    assert versions[-1].tags["data_version"] == record["data_version"]


def test_ctrl_c_stops_everything_and_a_restart_lands_what_arrived_meanwhile(site, served, prefect_server,
                                                                            tmp_path):
    wait_for(lambda: finished(retrain_runs("marketing")) and finished(retrain_runs("campaign")),
             "running retraining to finish")
    served.interrupt()
    assert not served.group_alive(), "mlops serve left processes behind"

    before = len(model_versions(site, "marketing"))
    drop(site, "marketing", "while-down.csv", customers(site, 40, "while-down", seed=3))
    again = Served(site, tmp_path / "serve-again.log", environment(prefect_server), "--use-case", "marketing")
    try:
        wait_for(lambda: len(model_versions(site, "marketing")) > before, "the waiting file to be trained on")
        assert landed_records(site, "marketing")[-1]["source"] == "while-down.csv"
        wait_for(lambda: finished(retrain_runs("marketing")), "the retraining run to finish")
    finally:
        again.interrupt()
    assert not again.group_alive()


def test_without_prefect_api_url_serve_runs_its_own_server(site, tmp_path):
    from pipelines.adapters.prefect_server import free_port

    port = free_port()
    env = environment(None) | {"PREFECT_HOME": str(tmp_path / "prefect-home")}
    own = Served(site, tmp_path / "serve-own.log", env, "--use-case", "marketing", "--port", str(port))
    try:
        assert f"Prefect UI: http://127.0.0.1:{port}" in own.output()
    finally:
        code = own.interrupt()
    assert code == 0, own.output()[-2000:]
    assert not own.group_alive()
    import socket

    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0
