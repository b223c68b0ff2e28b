"""`mlops serve`: the retrain flow deployed per use case; the landing zone lands files with land-file."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.adapters import deployments
from pipelines.adapters.landing_zone import LandingZone
from pipelines.adapters.runtime import prefect_api
from pipelines.config import definitions
from pipelines.config.errors import SettingsError
from pipelines.config.project import Project
from pipelines.config.settings import Settings
from pipelines.config.usecase import UseCase
from pipelines.flows.cycle import retrain
from pipelines.flows.landing import land_file
from pipelines.flows.predict import predict


def serve(project: Project, use_case_name: str, poll_seconds: float, host: str, port: int | None,
          notify: Callable[[str], None]) -> None:
    """Serve until interrupted; everything started here is stopped before returning."""
    use_cases = definitions.resolve(project, use_case_name)
    pool = _work_pool()
    zone = LandingZone(project, [u.name for u in use_cases], land_file, poll_seconds)
    deployments.serve(project, use_cases, lambda: _deployments(project, use_cases, pool),
                      zone, host, port, notify, work_pool=pool)


def deploy(project: Project, use_case_name: str, notify: Callable[[str], None]) -> list[str]:
    """Register the deployments on MLOPS_WORK_POOL and return; the pool's workers run them."""
    use_cases = definitions.resolve(project, use_case_name)
    pool = _work_pool()
    if pool is None:
        raise SettingsError("MLOPS_WORK_POOL is not set: name the Prefect work pool whose workers run "
                            "the deployments (or use `mlops serve` to run them in its own process)")
    with prefect_api((), project.state_dir / "prefect-server.log", notify):
        return deployments.register_on_pool(_deployments(project, use_cases, pool), pool, notify)


def _deployments(project: Project, use_cases: list[UseCase], pool: str | None) -> list:
    found = [deployments.retrain_deployment(retrain, project, u, pool) for u in use_cases]
    if pool:
        found += [deployments.land_deployment(land_file, project, u, pool) for u in use_cases]
        found += [deployments.predict_deployment(predict, project, u, pool) for u in use_cases]
    return found


def _work_pool() -> str | None:
    settings = Settings.load()
    if settings.work_pool and not settings.prefect_api_url:
        raise SettingsError("MLOPS_WORK_POOL needs PREFECT_API_URL: the Prefect server whose workers "
                            "poll the pool")
    return settings.work_pool
