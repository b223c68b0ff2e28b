"""Prefect deployments and events: retraining on a schedule and on data arrival, served in-process.

The flows are passed in, so this adapter knows how Prefect deploys and serves them, not what they do.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pipelines.adapters import runtime, signals
from pipelines.adapters.landing_zone import LandingZone
from pipelines.adapters.prefect_server import PrefectServer, port_is_free
from pipelines.config.errors import MlopsError
from pipelines.config.project import Project
from pipelines.config.usecase import UseCase

DEFAULT_PORT = 4200
FINISH_SECONDS = 300
STOP_SECONDS = 60
"""What stopping the runner and the Prefect server may take, on top of the landing zone's file."""
EVENT_VERSIONED = "mlops.data.versioned"
EVENT_DRIFTED = "mlops.data.drifted"
TRIGGERING_EVENT = {"always": EVENT_VERSIONED, "drift": EVENT_DRIFTED}


def use_case_resource(use_case: str) -> dict[str, str]:
    return {"prefect.resource.id": f"mlops.use-case.{use_case}", "prefect.resource.name": use_case}


def announce(use_case: str, payload: dict[str, Any]) -> list[str]:
    """Emit ``mlops.data.versioned`` (and ``mlops.data.drifted`` on drift) for a new data version."""
    from prefect.events import emit_event

    names = [EVENT_VERSIONED] + ([EVENT_DRIFTED] if payload.get("drifted") else [])
    for name in names:
        emit_event(event=name, resource=use_case_resource(use_case), payload=payload)
    return names


def retrain_deployment_name(use_case: str) -> str:
    return f"retrain-{use_case}"


def retrain_deployment(retrain: Any, project: Project, use_case: UseCase,
                       work_pool: str | None = None) -> Any:
    """``retrain-<use case>`` of the flow ``retrain``: on its cron schedule, and on the landing events
    its policy names. One run at a time per use case (a deployment concurrency limit); others queue.
    With ``work_pool``, its runs go to that pool's workers, which load the flow from this code.
    """
    if work_pool:
        retrain = from_source(retrain)
    from prefect.events import DeploymentEventTrigger

    policy = use_case.retraining
    event = TRIGGERING_EVENT.get(policy.on_new_data)
    triggers = [DeploymentEventTrigger(
        name=f"{use_case.name}: retrain on {event}",
        expect={event},
        match={"prefect.resource.id": use_case_resource(use_case.name)["prefect.resource.id"]},
        parameters={"use_case_name": use_case.name, "project_root": str(project.root),
                    "data_version": "{{ event.payload.data_version }}",
                    "trigger": "new data: {{ event.payload.source }}"},
    )] if event else []
    return retrain.to_deployment(
        name=retrain_deployment_name(use_case.name),
        cron=policy.schedule,
        parameters={"use_case_name": use_case.name, "project_root": str(project.root), "trigger": "schedule"},
        triggers=triggers,
        concurrency_limit=1,
        work_pool_name=work_pool,
        tags=["mlops", use_case.name],
        description=f"Retrain {use_case.name}: schedule {policy.schedule or 'off'}, "
                    f"on new data: {policy.on_new_data}.",
    )


def predict_deployment(predict: Any, project: Project, use_case: UseCase, work_pool: str) -> Any:
    """``predict-<use case>``: batch scoring with the champion, run on demand on the pool
    (`prefect deployment run predict/predict-<use case> -p path=... [-p output=...]`)."""
    return from_source(predict).to_deployment(
        name=f"predict-{use_case.name}", work_pool_name=work_pool,
        parameters={"use_case_name": use_case.name, "project_root": str(project.root)},
        tags=["mlops", use_case.name], description=f"Score a file with the {use_case.name} champion.")


def land_deployment(land: Any, project: Project, use_case: UseCase, work_pool: str) -> Any:
    """``land-<use case>``: validate and version one file, as the landing zone does, run on demand on
    the pool (`prefect deployment run land-file/land-<use case> -p path=...`), e.g. by an automation
    that sees a file arrive elsewhere."""
    return from_source(land).to_deployment(
        name=f"land-{use_case.name}", work_pool_name=work_pool,
        parameters={"use_case_name": use_case.name, "project_root": str(project.root)},
        tags=["mlops", use_case.name], description=f"Land one file into {use_case.name}'s dataset.")


def code_root() -> Path:
    """The folder holding the ``pipelines`` package: where a worker loads the flows from."""
    return Path(__file__).resolve().parents[2]


def from_source(flow: Any) -> Any:
    """``flow`` as a worker loads it: from its file under ``code_root()`` (the same image or checkout)."""
    module = sys.modules[flow.fn.__module__]
    path = Path(str(module.__file__)).resolve().relative_to(code_root())
    return flow.from_source(source=str(code_root()), entrypoint=f"{path.as_posix()}:{flow.fn.__name__}")


def register_on_pool(deployments: list[Any], work_pool: str, notify: Callable[[str], None]) -> list[str]:
    """Create or update ``deployments`` on ``work_pool``; one line per deployment, and a warning
    when no worker polls the pool (its runs would wait, Late, until one does)."""
    from prefect import deploy

    _require_pool(work_pool)
    # Prefect prints its own table of the deployments; the lines below say the same, one each.
    with contextlib.redirect_stdout(io.StringIO()):
        ids = deploy(*deployments, work_pool_name=work_pool, build=False, push=False,
                     print_next_steps_message=False, ignore_warnings=True)
    names = [f"{d.flow_name}/{d.name}" for d in deployments]
    for name in names:
        notify(f"deployed {name} on work pool '{work_pool}'")
    if not online_workers(work_pool):
        notify(f"warning: no worker polls work pool '{work_pool}'; runs wait until one does "
               f"(`prefect worker start --pool {work_pool} --type process`)")
    return [str(i) for i in ids]


def _require_pool(work_pool: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    async def read() -> None:
        async with get_client() as client:
            await client.read_work_pool(work_pool)

    try:
        asyncio.run(read())
    except ObjectNotFound:
        raise MlopsError(f"work pool '{work_pool}' does not exist on the Prefect server: create it with "
                         f"`prefect work-pool create {work_pool} --type process`") from None


def online_workers(work_pool: str) -> list[str]:
    """Names of the workers polling ``work_pool`` now; a one-line error when there is no such pool."""
    from prefect.client.orchestration import get_client

    _require_pool(work_pool)

    async def read() -> list[str]:
        async with get_client() as client:
            workers = await client.read_workers_for_work_pool(work_pool)
            return [w.name for w in workers if str(getattr(w, "status", "")).upper().endswith("ONLINE")]

    return asyncio.run(read())


def describe(project: Project, use_case: UseCase) -> str:
    policy = use_case.retraining
    return (f"{retrain_deployment_name(use_case.name)}: schedule {policy.schedule or 'off'} (UTC), on new "
            f"data: {policy.on_new_data}; landing zone "
            f"{project.incoming_dir(use_case.name).relative_to(project.root)}/")


def serve(project: Project, use_cases: list[UseCase], make_deployments: Callable[[], list[Any]],
          zone: LandingZone, host: str, port: int | None, notify: Callable[[str], None],
          work_pool: str | None = None) -> None:
    """Serve the deployments and watch the landing zone until interrupted; stop all that started here.

    With ``work_pool`` the deployments are registered on that pool, whose workers run them; this
    process then only watches the landing zone.
    """
    from prefect import serve as serve_deployments

    logging.getLogger("mlops.landing").setLevel(logging.INFO)
    if port is None:
        port = DEFAULT_PORT if port_is_free(DEFAULT_PORT, host) else None
    with runtime.prefect_api((), project.state_dir / "prefect-server.log", notify,
                             server_class=PrefectServer, host=host, port=port):
        deployments = make_deployments()
        # A new thread starts with empty context variables, Prefect's settings among them: without
        # a copy of this context its flow runs would go to a temporary server of their own.
        watcher = threading.Thread(target=contextvars.copy_context().run, args=(zone.run,),
                                   name="landing-zone", daemon=True)
        for use_case in use_cases:
            notify(describe(project, use_case))
        # Stopping waits for the landing zone to finish its file; a second Ctrl-C does not.
        signals.set_grace(FINISH_SECONDS + STOP_SECONDS)
        try:
            if work_pool:
                # Before the first file lands: its event must find the retrain trigger registered.
                register_on_pool(deployments, work_pool, notify)
            watcher.start()
            notify(f"watching every {zone.poll_seconds:g} s; Ctrl-C stops everything")
            if work_pool:
                while watcher.is_alive():
                    watcher.join(1.0)
            else:
                with _flow_runs_follow_this_process():
                    # The runner looks for due runs this often: triggered retraining starts within it.
                    serve_deployments(*deployments, print_starting_message=False,
                                      query_seconds=max(1.0, min(zone.poll_seconds, 5.0)))
        except KeyboardInterrupt:
            pass  # Ctrl-C before the runner took over its signals: the same orderly stop
        finally:
            zone.stop()
            if zone.busy:
                notify(f"finishing {zone.busy} before stopping")
            if watcher.ident is not None:
                watcher.join(FINISH_SECONDS)


@contextlib.contextmanager
def _flow_runs_follow_this_process() -> Iterator[None]:
    """The runner's flow-run processes end when this process ends, however it ends.

    They inherit the variable and act on it when they load the flow (``signals.follow_parent_if_asked``).
    """
    previous = os.environ.get(signals.PARENT_VARIABLE)
    os.environ[signals.PARENT_VARIABLE] = str(os.getpid())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(signals.PARENT_VARIABLE, None)
        else:
            os.environ[signals.PARENT_VARIABLE] = previous
