"""The MLflow tracking adapter: every run, tag, metric, artifact and logged model goes through here.

The tracking URI is always set explicitly: ``MLFLOW_TRACKING_URI`` when given, else a SQLite
store at the project root, never whatever the working directory happens to be.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata
from typing import TYPE_CHECKING, Any

from pipelines.adapters import git, owners, tracking_store
from pipelines.config.errors import MlopsError
from pipelines.config.project import Project
from pipelines.config.settings import Settings

if TYPE_CHECKING:
    from pipelines.nodes.reporting import CandidateRecord

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
TAG_FOUND_DEAD = "found_dead"
TAG_WORKER = "worker"
# Without a kind the MLflow UI guesses, and may open on its generative-AI overview.
EXPERIMENT_KIND_TAG, EXPERIMENT_KIND = "mlflow.experimentKind", "custom_model_development"
NOTE_TAG = "mlflow.note.content"
# The MLflow 3 UI picks its view from this query parameter (default: its generative-AI view).
TRAINING_VIEW = "workflowType=machine_learning"
# Statuses a run ends with: KILLED when the command was stopped or its process found dead.
FINISHED, FAILED, KILLED = "FINISHED", "FAILED", "KILLED"


class TrackingError(MlopsError):
    """MLflow could not be reached or refused a request."""


# What MLflow's client reads from the environment to reach and authenticate to a store and its
# artifacts; a process elsewhere (a Dask worker) has none of the command's environment.
CONNECTION_VARIABLES = (
    "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_CLIENT_CERT_PATH",
    "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION", "MLOPS_SERVICE_TIMEOUT",
)


@dataclass(frozen=True)
class StoreAccess:
    """A store and the credentials to use it, passed explicitly to a process that logs elsewhere."""

    uri: str
    connection: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def of_this_process(cls, uri: str) -> StoreAccess:
        return cls(uri, {name: os.environ[name] for name in CONNECTION_VARIABLES if name in os.environ})


def tracking_uri(project: Project) -> str:
    return Settings.load().mlflow_tracking_uri or f"sqlite:///{project.root / STORE_FILE}"


def is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def client_for(uri: str) -> Any:
    """An MlflowClient on ``uri``; the fluent API (runs started by this process) is pointed there too.

    A store that is down or read-only makes any call raise a one-line ``ServiceError``.
    """
    import mlflow

    tracking_store.bound_client_retries()
    tracking_store.quiet_reraised_errors()
    # MLflow prints a "View run at" line per run against a server; the command reports its own.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # "Waiting up to 300 seconds for model version to finish creation", once per registration.
    logging.getLogger("mlflow.store.model_registry.abstract_store").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return _cached_client(uri)


@functools.lru_cache(maxsize=8)
def _cached_client(uri: str) -> Any:
    from mlflow import MlflowClient

    # Two commands creating a new SQLite store at once would both run its schema migrations.
    with tracking_store.first_use(uri), tracking_store.service_errors(uri):
        client = tracking_store.GuardedClient(MlflowClient(tracking_uri=uri, registry_uri=uri), uri)
        if tracking_store.sqlite_path(uri) is not None:
            client.search_registered_models(max_results=1)  # the registry's store, created now too
    return client


class Tracker:
    """MLflow tracking on one project's store."""

    def __init__(self, project: Project | None, uri: str | None = None) -> None:
        if project is None and uri is None:
            raise ValueError("a Tracker needs a project or a store URI")
        self.project = project
        self.uri = uri or tracking_uri(project)
        self.client = client_for(self.uri)

    @classmethod
    def elsewhere(cls, access: StoreAccess) -> Tracker:
        """A tracker in another process (a Dask worker) on the store the command uses.

        The credentials become this process's: MLflow's client reads them from the environment.
        A SQLite store that is not there is another machine's, and is never created here.
        """
        os.environ.update(access.connection)
        path = tracking_store.sqlite_path(access.uri)
        if path is not None and not path.exists():
            raise TrackingError(f"the MLflow store {access.uri} is not on {socket.gethostname()}: workers on "
                                "other machines need a tracking server (MLFLOW_TRACKING_URI=http://...)")
        return cls(None, access.uri)

    def access(self) -> StoreAccess:
        """This store, with this process's credentials, for a process elsewhere."""
        return StoreAccess.of_this_process(self.uri)

    def check_available(self) -> None:
        """One line and exit code 3, before any work, when the store is down or read-only."""
        tracking_store.check_available(self.uri)

    def experiment_id(self, name: str, description: str = "") -> str:
        """The experiment's id, creating it on first use (artifacts under the project for a local store).

        Resolved once per cycle and passed on by id: two processes creating one experiment at once
        on a server with auth would otherwise see the loser refused (403) rather than the winner's.
        """
        from mlflow.exceptions import MlflowException

        existing = self.client.get_experiment_by_name(name)
        if existing is None:
            local = is_local_store(self.uri) and self.project is not None
            location = (self.project.root / ARTIFACTS_DIR / name).as_uri() if local else None
            try:
                return self.client.create_experiment(name, artifact_location=location,
                                                     tags=experiment_tags(description))
            except (MlflowException, MlopsError):
                # Created meanwhile by another process: refused as existing, or (auth) as not ours.
                existing = self.client.get_experiment_by_name(name)
                if existing is None:
                    raise
        if existing.lifecycle_stage == "deleted":
            raise TrackingError(f"MLflow experiment '{name}' is deleted; restore it in the MLflow UI or "
                                "with `mlflow experiments restore`, or rename the use case's experiment")
        self._complete_tags(existing, experiment_tags(description))
        return existing.experiment_id

    def _complete_tags(self, experiment: Any, wanted: dict[str, str]) -> None:
        """Tags an older experiment lacks; a user's own kind or note is left alone."""
        for key, value in wanted.items():
            if key not in experiment.tags:
                with contextlib.suppress(MlopsError):  # a reader may not tag; the tags are cosmetic
                    self.client.set_experiment_tag(experiment.experiment_id, key, value)

    def run_url(self, experiment_id: str, run_id: str) -> str | None:
        """The run's page in the UI of a tracking server (None for a local store), opened in the
        UI's model-training view: without ``workflowType`` MLflow 3 shows its generative-AI one."""
        if not self.uri.startswith(("http://", "https://")):
            return None
        return f"{self.uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{TRAINING_VIEW}"

    def lineage_tags(self, use_case: str, data_version: str, validation: str) -> dict[str, str]:
        state = git.state(self.project)
        return {TAG_USE_CASE: use_case, TAG_GIT_COMMIT: state.commit, TAG_GIT_DIRTY: str(state.dirty).lower(),
                TAG_DATA_VERSION: data_version, TAG_VALIDATION: validation, TAG_FLOW_RUN: _flow_run_id()}

    # --- cycle runs -------------------------------------------------------------------------

    def start_cycle(self, experiment_id: str, tags: dict[str, str], trigger: str) -> str:
        run = self.client.create_run(experiment_id, run_name=f"cycle {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                     tags={**tags, **owners.tags(), TAG_ROLE: "cycle", "trigger": trigger})
        return run.info.run_id

    def finish(self, run_id: str, status: str = FINISHED) -> None:
        self.client.set_terminated(run_id, status=status)

    def close_dead_runs(self, experiment_id: str) -> list[str]:
        """Runs of this tool left RUNNING by a process that no longer exists: closed as KILLED.

        A run records its process (host, pid, start time); only processes on this host can be
        checked, so runs of live processes and of other machines are left alone.
        """
        running = self.client.search_runs(
            [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000)
        note = f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}: its process ({{owner}}) had ended"
        closed = []
        for run in running:
            tags = run.data.tags
            if tags.get(TAG_ROLE) not in ("cycle", "candidate") or not owners.is_dead(tags):
                continue
            self.client.set_tag(run.info.run_id, TAG_FOUND_DEAD, note.format(owner=owners.describe(tags)))
            self.client.set_terminated(run.info.run_id, status=KILLED)
            closed.append(run.info.run_id)
        return closed

    def fail_running_candidate(self, experiment_id: str, parent_id: str, candidate: str,
                               reason: str) -> str | None:
        """A candidate run of this cycle that its lost process left RUNNING, ended FAILED; its id."""
        runs = self.client.search_runs(
            [experiment_id], max_results=1,
            filter_string=(f"tags.mlflow.parentRunId = '{parent_id}' and "
                           f"tags.{TAG_CANDIDATE} = '{candidate}' and attributes.status = 'RUNNING'"))
        if not runs:
            return None
        run_id = runs[0].info.run_id
        self.client.set_tag(run_id, "error", reason[:5000])
        self.client.set_terminated(run_id, status=FAILED)
        return run_id

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, value)

    def log_report(self, run_id: str, params: dict[str, str], metrics: dict[str, float],
                   texts: dict[str, str], figures: dict[str, Any], documents: dict[str, Any]) -> None:
        """The cycle's leaderboard: parameters, one metric per model, tables, plots, a JSON summary."""
        for key, value in params.items():
            self.client.log_param(run_id, key, value)
        for key, value in finite(metrics).items():
            self.client.log_metric(run_id, key, value)
        for path, text in texts.items():
            self.client.log_text(run_id, text, path)
        for path, figure in figures.items():
            self.client.log_figure(run_id, figure, path)
        for path, document in documents.items():
            self.client.log_dict(run_id, document, path)

    def already_trained(self, experiment: str, data_version: str) -> bool:
        """Whether a finished cycle in ``experiment`` trained on ``data_version``."""
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            return False
        runs = self.client.search_runs(
            [found.experiment_id],
            filter_string=(f"tags.{TAG_DATA_VERSION} = '{data_version}' and tags.{TAG_ROLE} = 'cycle' "
                           "and attributes.status = 'FINISHED'"),
            max_results=1)
        return bool(runs)

    # --- candidate runs ---------------------------------------------------------------------

    def training_dataset(self, frame: Any, source: str, name: str, data_version: str) -> Any:
        """The training rows as an MLflow dataset whose digest is the DVC data version."""
        import mlflow.data

        with _quiet_mlflow_hints():
            return mlflow.data.from_pandas(frame, source=source, name=name, digest=data_version[:36])

    def log_candidate(self, experiment_id: str, parent_id: str, tags: dict[str, str], record: CandidateRecord,
                      dataset: Any) -> tuple[str, str | None]:
        """A nested run of the cycle: parameters, metrics, plots, the model. Returns (run id, model URI)."""
        import mlflow

        run = self.client.create_run(
            experiment_id, start_time=int(record.started * 1000), run_name=record.name,
            tags={**tags, **owners.tags(), "mlflow.parentRunId": parent_id, TAG_CANDIDATE: record.name,
                  TAG_FAMILY: record.family, TAG_ROLE: "candidate"})
        run_id = run.info.run_id
        try:
            with tracking_store.service_errors(self.uri), mlflow.start_run(run_id=run_id), \
                    _quiet_mlflow_hints():
                mlflow.log_params(record.params)
                mlflow.log_input(dataset, context="training")
                if not record.error:
                    self._log_results(record)
                    return run_id, self._log_model(record)
                mlflow.set_tag("error", record.error[:5000])
            # After the fluent run has ended, which would have marked it FINISHED.
            self.client.set_terminated(run_id, status=FAILED)
            return run_id, None
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Stopped while logging: the run says so rather than FAILED.
                with contextlib.suppress(Exception):
                    self.client.set_terminated(run_id, status=KILLED)
            raise

    def _log_results(self, record: CandidateRecord) -> None:
        import mlflow

        for step, metrics in enumerate(record.fold_metrics, start=1):
            mlflow.log_metrics(finite(metrics), step=step)
        mlflow.log_metrics(finite(record.metrics))
        for path, figure in record.figures.items():
            mlflow.log_figure(figure, path)
        for path, text in record.texts.items():
            mlflow.log_text(text, path)

    def _log_model(self, record: CandidateRecord) -> str:
        import mlflow.sklearn
        from mlflow.models import infer_signature

        quiet_pickle_warning()
        signature = infer_signature(record.input_example, record.example_output)
        info = mlflow.sklearn.log_model(
            record.model, name="model", signature=signature,
            input_example=record.input_example, pip_requirements=pinned_requirements(record.requirements),
            # skops refuses the PyTorch and XGBoost estimators; the store is the project's own.
            serialization_format="cloudpickle", pyfunc_predict_fn=record.predict_method)
        return info.model_uri

    # --- artifacts beside a model, and data batches -----------------------------------------

    def log_document(self, run_id: str, document: dict[str, Any], path: str) -> None:
        self.client.log_dict(run_id, document, path)

    def read_document(self, run_id: str, path: str) -> dict[str, Any] | None:
        """A JSON artifact of a run, or None when the run has none at ``path``."""
        import json
        import tempfile

        try:
            with tempfile.TemporaryDirectory() as folder:
                local = self.client.download_artifacts(run_id, path, folder)
                with open(local) as stream:
                    return json.load(stream)
        except Exception:  # noqa: BLE001 - an artifact that is not there is simply absent
            return None

    def log_batch_run(self, experiment_id: str, name: str, tags: dict[str, str], metrics: dict[str, float],
                      documents: dict[str, Any]) -> str:
        """A finished run of role ``data-batch``: figures about one landed file."""
        from mlflow.entities import Metric

        run = self.client.create_run(experiment_id, run_name=name,
                                     tags={**tags, **owners.tags(), TAG_ROLE: "data-batch"})
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(metric_name(k), float(v), now, 0)
                                               for k, v in finite(metrics).items()])
        for path, document in documents.items():
            self.client.log_dict(run_id, document, path)
        self.client.set_terminated(run_id, status="FINISHED")
        return run_id


def experiment_tags(description: str) -> dict[str, str]:
    """The MLflow UI opens the experiment on its training runs, with the use case's description."""
    tags = {EXPERIMENT_KIND_TAG: EXPERIMENT_KIND}
    if description:
        tags[NOTE_TAG] = description
    return tags


def finite(values: dict[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and not math.isnan(v)}


def metric_name(name: str) -> str:
    """``name`` with the characters MLflow refuses in metric keys replaced."""
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", name)


def pinned_requirements(distributions: tuple[str, ...]) -> list[str]:
    """``name==version`` of each installed distribution; passing them spares MLflow inferring them
    by importing packages, which takes seconds per model and can miss the CPU-only builds."""
    pins = []
    for name in distributions:
        with contextlib.suppress(metadata.PackageNotFoundError):
            pins.append(f"{name}=={metadata.version(name)}")
    return pins


def _flow_run_id() -> str:
    try:
        from prefect.runtime import flow_run

        return str(flow_run.id or "none")
    except Exception:  # noqa: BLE001 - outside a flow there is simply no id
        return "none"


@contextlib.contextmanager
def _quiet_mlflow_hints() -> Iterator[None]:
    with warnings.catch_warnings():
        # Integer columns cannot hold missing values, MLflow hints; validation rejects those first.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        # MLflow registers the local-file source twice and then warns that a path is ambiguous.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        yield


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
