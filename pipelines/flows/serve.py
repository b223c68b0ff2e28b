"""`mlops serve`: the retrain flow deployed per use case; the landing zone lands files with land-file."""

from __future__ import annotations

from collections.abc import Callable

from pipelines.adapters import deployments
from pipelines.adapters.landing_zone import LandingZone
from pipelines.config import definitions
from pipelines.config.project import Project
from pipelines.flows.cycle import retrain
from pipelines.flows.landing import land_file


def serve(project: Project, use_case_name: str, poll_seconds: float, host: str, port: int | None,
          notify: Callable[[str], None]) -> None:
    """Serve until interrupted; everything started here is stopped before returning."""
    use_cases = definitions.resolve(project, use_case_name)
    zone = LandingZone(project, [u.name for u in use_cases], land_file, poll_seconds)
    deployments.serve(project, use_cases,
                      lambda: [deployments.retrain_deployment(retrain, project, u) for u in use_cases],
                      zone, host, port, notify)
