"""Every environment variable the product reads, with its type and default, in one frozen object.

Services are opt-in: with none of these set, a command uses the embedded defaults (an MLflow store
on SQLite in the project, a temporary Prefect server, two candidates trained at once).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.config.errors import SettingsError


class Settings(BaseSettings):
    """Read from the environment each time it is asked for, so a changed variable takes effect."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True, env_ignore_empty=True,
                                      populate_by_name=False)

    project: Path | None = Field(
        None, validation_alias="MLOPS_PROJECT",
        description="The project a command acts on; default: the folder holding data.dvc, "
                    "found from the working directory upwards.")
    mlflow_tracking_uri: str | None = Field(
        None, validation_alias="MLFLOW_TRACKING_URI",
        description="MLflow tracking and registry store; default: sqlite:///<project>/mlflow.db "
                    "with artifacts in <project>/mlartifacts/.")
    prefect_api_url: str | None = Field(
        None, validation_alias="PREFECT_API_URL",
        description="A running Prefect server's API; default: a temporary local server per "
                    "command (a full one with UI for `mlops serve`).")
    dvc_remote: str | None = Field(
        None, validation_alias="MLOPS_DVC_REMOTE",
        description="URL of the DVC remote data versions are pushed to and pulled from first, e.g. "
                    "s3://dvc/project (kept as remote 'env' in .dvc/config.local); credentials from "
                    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; default: the remotes in .dvc/config.")
    dvc_endpoint_url: str | None = Field(
        None, validation_alias="MLOPS_DVC_ENDPOINT_URL",
        description="Endpoint of an S3-compatible store for MLOPS_DVC_REMOTE (SeaweedFS, Ceph, ...).")
    work_pool: str | None = Field(
        None, validation_alias="MLOPS_WORK_POOL",
        description="Prefect work pool whose workers run the deployments (`mlops deploy`, `mlops serve`); "
                    "default: none, `mlops serve` runs them in its own process.")
    dask_address: str | None = Field(
        None, validation_alias="MLOPS_DASK_ADDRESS",
        description="A Dask scheduler (tcp://host:8786) whose workers train the candidates, each "
                    "logging its own run (checked by `mlops doctor`); default: none, candidates train "
                    "in the command's threads.")
    max_workers: int = Field(
        2, ge=1, validation_alias="MLOPS_MAX_WORKERS",
        description="Candidates trained at once; each gets its share of the cores.")
    tuning: bool = Field(
        True, validation_alias="MLOPS_TUNING",
        description="false: candidates keep their declared hyperparameters, as with `mlops run "
                    "--no-tune`, in scheduled and triggered retraining too.")
    service_timeout: float = Field(
        30.0, gt=0, validation_alias="MLOPS_SERVICE_TIMEOUT",
        description="Seconds a command keeps retrying an unreachable MLflow store before it "
                    "stops with one line (exit code 3).")
    debug: bool = Field(
        False, validation_alias="MLOPS_DEBUG",
        description="Show tracebacks on the terminal too (as `mlops --debug` does); they are always "
                    "in .mlops/logs/mlops.log.")

    @classmethod
    def load(cls) -> Settings:
        """The current environment's settings; a value of the wrong kind is a one-line error."""
        try:
            return cls()
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else "environment"
            message = error["msg"].replace("Input should be", "must be")
            raise SettingsError(f"{name}: {message}, got {error.get('input')!r}") from None

    @classmethod
    def variables(cls) -> list[tuple[str, str, str]]:
        """(environment variable, default, description) of every setting, for the docs."""
        return [(str(field.validation_alias), "" if field.default is None else str(field.default),
                 field.description or "") for field in cls.model_fields.values()]
