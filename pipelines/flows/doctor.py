"""`mlops doctor`: every backend the project uses, whether it answers and accepts this client."""

from __future__ import annotations

from pipelines.adapters import probes
from pipelines.adapters.probes import Probe
from pipelines.config.project import Project


def examine(project: Project) -> list[Probe]:
    """One probe per backend, in the order a cycle uses them; Dask only when one is configured."""
    return [probes.tracking(project), probes.registry(project), probes.artifacts(project),
            *probes.prefect(project), probes.dvc_remote(project), *probes.dask()]
