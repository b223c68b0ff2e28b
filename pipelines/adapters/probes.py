"""One probe per backend for `mlops doctor`: what is in use, whether it answers, whether this
client's credentials work, which version it runs, and a hint when something is wrong."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from pipelines.adapters import prefect_api, tracking_store
from pipelines.adapters.dvc import DataVersions, last_line
from pipelines.adapters.tracker import ARTIFACTS_DIR, client_for, tracking_uri
from pipelines.config.errors import AuthenticationError, MlopsError
from pipelines.config.project import Project
from pipelines.config.settings import Settings

TIMEOUT = 10.0


@dataclass(frozen=True)
class Probe:
    backend: str
    in_use: str
    answers: bool | None = None
    credentials: bool | None = None
    version: str = ""
    hint: str = ""

    @property
    def ok(self) -> bool:
        return self.answers is not False and self.credentials is not False and not self.hint


def _mlflow_get(uri: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(tracking_store.authorised_request(f"{uri.rstrip('/')}{path}"),
                                    timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def tracking(project: Project) -> Probe:
    uri = tracking_uri(project)
    shown = tracking_store.redact(uri)
    if not uri.startswith(("http://", "https://")):
        try:
            tracking_store.check_available(uri, timeout=TIMEOUT)
        except MlopsError as exc:
            return Probe("tracking", shown, False, hint=str(exc))
        return Probe("tracking", f"{shown} (embedded)", True, None, _installed("mlflow"))
    try:
        status, _ = _mlflow_get(uri, "/health")
    except (urllib.error.URLError, OSError) as exc:
        return Probe("tracking", shown, False, hint=f"unreachable ({getattr(exc, 'reason', exc)}): is the "
                                                    "MLflow server up, and MLFLOW_TRACKING_URI right?")
    status, body = _mlflow_get(uri, "/api/2.0/mlflow/experiments/search?max_results=1")
    if status == 401:
        return Probe("tracking", shown, True, False, hint=tracking_store.credentials_refused(uri).args[0])
    if status != 200:
        return Probe("tracking", shown, True, None,
                     hint=f"answered {status}: {body[:120].decode(errors='replace')}")
    answered, version = _mlflow_get(uri, "/version")
    return Probe("tracking", shown, True, True, version.decode(errors="replace")[:20] * (answered == 200))


def registry(project: Project) -> Probe:
    uri = tracking_uri(project)
    try:
        client_for(uri).search_registered_models(max_results=1)
    except AuthenticationError as exc:
        return Probe("registry", tracking_store.redact(uri), True, False, hint=str(exc))
    except MlopsError as exc:
        return Probe("registry", tracking_store.redact(uri), False, hint=str(exc))
    return Probe("registry", f"{tracking_store.redact(uri)} (models, aliases)", True,
                 True if uri.startswith("http") else None)


def artifacts(project: Project) -> Probe:
    uri = tracking_uri(project)
    if not uri.startswith(("http://", "https://")):
        folder = project.root / ARTIFACTS_DIR
        writable = os.access(folder if folder.exists() else project.root, os.W_OK)
        return Probe("artifacts", f"{folder} (local)", writable,
                     hint="" if writable else f"{folder} is not writable")
    try:
        status, body = _mlflow_get(uri, "/api/2.0/mlflow-artifacts/artifacts?path=")
    except (urllib.error.URLError, OSError) as exc:
        return Probe("artifacts", "proxied by the MLflow server", False,
                     hint=f"unreachable ({getattr(exc, 'reason', exc)})")
    if status == 200:
        return Probe("artifacts", "proxied by the MLflow server (mlflow-artifacts:)", True, True)
    if status == 401:
        return Probe("artifacts", "proxied by the MLflow server", True, False,
                     hint="refused the MLflow credentials")
    text = body[:160].decode(errors="replace").replace("\n", " ")
    if status == 404:
        return Probe("artifacts", "written by the client to the store (no --serve-artifacts)", True, None)
    return Probe("artifacts", "proxied by the MLflow server", False, hint=f"the server cannot reach its "
                 f"artifact store ({status}: {text}); check its S3 endpoint and credentials")


def prefect(project: Project) -> list[Probe]:
    configured = Settings.load().prefect_api_url
    if configured is None:
        from prefect.settings import PREFECT_API_URL

        configured = PREFECT_API_URL.value()
    if not configured:
        return [Probe("prefect", "a temporary local server per command (embedded)", None, None,
                      _installed("prefect"))]
    try:
        version = prefect_api.check(configured, TIMEOUT)
    except AuthenticationError as exc:
        return [Probe("prefect", configured, True, False, hint=str(exc))]
    except MlopsError as exc:
        return [Probe("prefect", configured, False, hint=str(exc))]
    found = [Probe("prefect", configured, True, True, version)]
    pool = Settings.load().work_pool
    if pool:
        found.append(_work_pool(pool))
    return found


def _work_pool(pool: str) -> Probe:
    from pipelines.adapters.deployments import online_workers

    try:
        workers = online_workers(pool)
    except MlopsError as exc:
        return Probe("work pool", pool, False, hint=str(exc))
    if not workers:
        return Probe("work pool", pool, True, None, hint=f"no worker polls '{pool}': start one with "
                     f"`prefect worker start --pool {pool} --type process`")
    return Probe("work pool", f"{pool} ({len(workers)} worker(s) online)", True, None)


def dvc_remote(project: Project) -> Probe:
    versions = DataVersions(project)
    try:
        remotes = versions.remotes()
    except MlopsError as exc:
        return Probe("dvc remote", "?", False, hint=str(exc))
    if not remotes:
        return Probe("dvc remote", "none configured", None, hint="no DVC remote: set MLOPS_DVC_REMOTE")
    remote = remotes[0]
    url = versions.remote_url(remote)
    done = versions.cloud_status(remote)
    shown = f"{remote}: {url}"
    if done.returncode == 0:
        return Probe("dvc remote", shown, True, None if "://" not in url else True, _installed("dvc"))
    reason = last_line(done)
    refused = any(word in reason.lower() for word in ("403", "forbidden", "signature", "accessdenied",
                                                      "invalidaccesskeyid", "credentials"))
    if refused:
        return Probe("dvc remote", shown, True, False, _installed("dvc"),
                     "the remote refused the credentials: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
    return Probe("dvc remote", shown, False, None, _installed("dvc"), f"dvc status --cloud failed: {reason}")


def dask() -> list[Probe]:
    address = Settings.load().dask_address
    if not address:
        return []
    try:
        from distributed import Client

        with Client(address, timeout=TIMEOUT) as client:
            info: Any = client.scheduler_info()
            versions = client.get_versions()
        workers = len(info.get("workers", {}))
        version = versions.get("scheduler", {}).get("packages", {}).get("distributed", "")
        return [Probe("dask", f"{address} ({workers} worker(s))", True, None, str(version),
                      "" if workers else "the scheduler has no workers")]
    except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
        return [Probe("dask", address, False, hint=f"cannot connect ({type(exc).__name__}: {exc})")]


def _installed(distribution: str) -> str:
    from importlib import metadata

    try:
        return f"{metadata.version(distribution)} (client)"
    except metadata.PackageNotFoundError:
        return ""
