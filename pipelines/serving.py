"""`mlops serve`: scheduled and data-triggered retraining deployments, and the landing-zone watcher."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from typing import Any

from pipelines.landing_zone import LandingZone
from pipelines.project import Project
from pipelines.retraining import retraining_spec
from pipelines.usecase import UseCase

DEFAULT_PORT = 4200
FINISH_SECONDS = 300


def retrain_deployment_name(use_case: str) -> str:
    return f"retrain-{use_case}"


def retrain_deployment(project: Project, use_case: UseCase) -> Any:
    """``retrain-<use case>``: on its cron schedule, and on the landing events its policy names.

    One run at a time per use case (a deployment concurrency limit); further triggers queue.
    """
    from prefect.events import DeploymentEventTrigger

    from pipelines.flows.cycle import retrain
    from pipelines.flows.landing import EVENT_DRIFTED, EVENT_VERSIONED, use_case_resource

    spec = retraining_spec(use_case)
    triggers = []
    event = {"always": EVENT_VERSIONED, "drift": EVENT_DRIFTED}.get(spec.on_new_data)
    if event:
        triggers.append(DeploymentEventTrigger(
            name=f"{use_case.name}: retrain on {event}",
            expect={event},
            match={"prefect.resource.id": use_case_resource(use_case.name)["prefect.resource.id"]},
            parameters={"use_case_name": use_case.name, "project_root": str(project.root),
                        "data_version": "{{ event.payload.data_version }}",
                        "trigger": "new data: {{ event.payload.source }}"},
        ))
    return retrain.to_deployment(
        name=retrain_deployment_name(use_case.name),
        cron=spec.schedule,
        parameters={"use_case_name": use_case.name, "project_root": str(project.root),
                    "trigger": "schedule"},
        triggers=triggers,
        concurrency_limit=1,
        tags=["mlops", use_case.name],
        description=(f"Retrain {use_case.name}: schedule {spec.schedule or 'off'}, "
                     f"on new data: {spec.on_new_data}."),
    )


def serve(project: Project, use_cases: list[UseCase], poll_seconds: float, host: str, port: int | None,
          notify: Callable[[str], None]) -> None:
    """Serve until interrupted; everything started here is stopped before returning."""
    from prefect import serve as serve_deployments

    from pipelines import runtime
    from pipelines.prefect_server import PrefectServer, port_is_free

    logging.getLogger("mlops.landing").setLevel(logging.INFO)
    if port is None:
        port = DEFAULT_PORT if port_is_free(DEFAULT_PORT, host) else None
    with runtime.prefect_api((), project.state_dir / "prefect-server.log", notify,
                             server_class=PrefectServer, host=host, port=port):
        deployments = [retrain_deployment(project, use_case) for use_case in use_cases]
        zone = LandingZone(project, [u.name for u in use_cases], poll_seconds)
        # A new thread starts with empty context variables, Prefect's settings among them: without
        # a copy of this context its flow runs would go to a temporary server of their own.
        watcher = threading.Thread(target=contextvars.copy_context().run, args=(zone.run,),
                                   name="landing-zone", daemon=True)
        for use_case in use_cases:
            spec = retraining_spec(use_case)
            notify(f"{retrain_deployment_name(use_case.name)}: schedule {spec.schedule or 'off'} (UTC), "
                   f"on new data: {spec.on_new_data}; landing zone "
                   f"{project.incoming_dir(use_case.name).relative_to(project.root)}/")
        try:
            watcher.start()
            notify(f"watching every {poll_seconds:g} s; Ctrl-C stops everything")
            # The runner looks for due runs this often: triggered retraining starts within it.
            serve_deployments(*deployments, print_starting_message=False,
                              query_seconds=max(1.0, min(poll_seconds, 5.0)))
        except KeyboardInterrupt:
            pass  # Ctrl-C before the runner took over its signals: the same orderly stop
        finally:
            zone.stop()
            if zone.busy:
                notify(f"finishing {zone.busy} before stopping")
            if watcher.ident is not None:
                watcher.join(FINISH_SECONDS)
