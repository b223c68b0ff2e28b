"""The MLflow adapter: where runs go, what every run is tagged with, and how a model is logged.

The tracking URI is always set explicitly: ``MLFLOW_TRACKING_URI`` when given, else a SQLite
store at the project root, never whatever the working directory happens to be.
"""

from __future__ import annotations

import functools
import logging
import os
import subprocess
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from pipelines.errors import MlopsError
from pipelines.project import Project

TRACKING_ENV = "MLFLOW_TRACKING_URI"
STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"

# Tag names shared by runs and model versions, so one search finds both.
TAG_USE_CASE = "use_case"
TAG_GIT_COMMIT = "git_commit"
TAG_GIT_DIRTY = "git_dirty"
TAG_DATA_VERSION = "data_version"
TAG_VALIDATION = "validation"
TAG_FLOW_RUN = "prefect_flow_run_id"
TAG_CANDIDATE = "candidate"
TAG_FAMILY = "candidate_family"
TAG_ROLE = "run_role"


class TrackingError(MlopsError):
    """MLflow could not be reached or refused a request."""


def tracking_uri(project: Project) -> str:
    return os.environ.get(TRACKING_ENV) or f"sqlite:///{project.root / STORE_FILE}"


def is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def client(project: Project):
    """An MlflowClient on the project's store; the fluent API is pointed at the same store."""
    import mlflow

    uri = tracking_uri(project)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return _client_for(uri)


@functools.lru_cache(maxsize=8)
def _client_for(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(mlflow_client, project: Project, name: str) -> str:
    """The experiment's id, creating it on first use.

    For the embedded store, artifacts go under the project root; a tracking server decides for
    itself where artifacts live.
    """
    existing = mlflow_client.get_experiment_by_name(name)
    if existing is not None:
        if existing.lifecycle_stage == "deleted":
            raise TrackingError(f"MLflow experiment '{name}' is deleted; restore it in the MLflow UI "
                                "or with `mlflow experiments restore`, or rename the use case's experiment")
        return existing.experiment_id
    location = None
    if is_local_store(tracking_uri(project)):
        location = (project.root / ARTIFACTS_DIR / name).as_uri()
    return mlflow_client.create_experiment(name, artifact_location=location)


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool


def git_state(project: Project) -> GitState:
    """The commit the project is at, and whether tracked files differ from it."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", "-C", str(project.root), *args], capture_output=True, text=True,
                              check=False)

    head = git("rev-parse", "HEAD")
    if head.returncode != 0:
        return GitState("unknown", True)
    status = git("status", "--porcelain", "--untracked-files=no")
    return GitState(head.stdout.strip(), bool(status.stdout.strip()))


def current_flow_run_id() -> str:
    try:
        from prefect.runtime import flow_run

        return str(flow_run.id or "none")
    except Exception:  # noqa: BLE001 - outside a flow there is simply no id
        return "none"


def lineage_tags(use_case: str, data_version: str, validation: str, git: GitState) -> dict[str, str]:
    return {
        TAG_USE_CASE: use_case,
        TAG_GIT_COMMIT: git.commit,
        TAG_GIT_DIRTY: str(git.dirty).lower(),
        TAG_DATA_VERSION: data_version,
        TAG_VALIDATION: validation,
        TAG_FLOW_RUN: current_flow_run_id(),
    }


class _DropPickleWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pickle or cloudpickle format" not in record.getMessage()


def quiet_pickle_warning() -> None:
    """Drop MLflow's per-model warning about pickled models.

    The candidates include PyTorch and XGBoost estimators that skops cannot load, so models are
    cloudpickled on purpose; the README says to load models only from a registry you trust.
    """
    logger = logging.getLogger("mlflow.sklearn")
    if not any(isinstance(f, _DropPickleWarning) for f in logger.filters):
        logger.addFilter(_DropPickleWarning())


def pip_requirements(families: set[str]) -> list[str]:
    """Pinned requirements of a logged model, read from the installed versions.

    Passing them avoids MLflow inferring requirements by importing packages, which takes seconds
    per model and can miss the CPU-only builds.
    """
    distributions = ["scikit-learn", "pandas", "numpy", "scipy", "cloudpickle"]
    if "xgboost" in families:
        distributions.append("xgboost-cpu")
    if "pytorch" in families:
        distributions.append("torch")
    pins = []
    for name in distributions:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def model_code_paths(project: Project) -> list[str]:
    """The pure packages a pickled pipeline refers to, shipped inside the model artifact.

    A model can then be loaded by anyone with the pinned requirements, without this repository.
    """
    return [str(project.root / package) for package in ("features", "models")
            if (project.root / package).is_dir()]


def loggable_params(values: dict[str, Any], prefix: str) -> dict[str, str]:
    """Parameters as MLflow takes them: flat, stringified, within its length limit."""
    params = {}
    for key, value in values.items():
        if hasattr(value, "get_params") or callable(value):
            continue
        text = str(value)
        params[f"{prefix}{key}"] = text if len(text) <= 500 else text[:497] + "..."
    return params
