"""The ``mlops`` command line. Heavy libraries are imported inside commands, so help is instant."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from pipelines.errors import MlopsError

app = typer.Typer(
    help="Validated, versioned data and competing models for each use case.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Pull, validate, add and list versions of the datasets.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")

UseCaseOption = Annotated[str, typer.Option("--use-case", "-u", help="Use case name.")]
FileArgument = Annotated[Path, typer.Argument(help="CSV file (optionally .gz).")]


def _project():
    from pipelines.project import Project

    return Project.find()


def _echo_error(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


@data_app.command("pull")
def data_pull() -> None:
    """Restore data/ to the version data.dvc names (offline for the shipped sample)."""
    from pipelines.versioning import DataVersions

    versions = DataVersions(_project())
    version = versions.pull()
    state = "clean" if versions.is_clean() else "NOT clean: see `dvc status`"
    typer.echo(f"data version {version} restored in data/ (dvc status: {state})")


@data_app.command("validate")
def data_validate(file: FileArgument, use_case: UseCaseOption) -> None:
    """Check FILE against the use case's expectation suite; exit 1 when it fails."""
    from pipelines import usecase
    from pipelines.flows.data import validate_file

    project = _project()
    report = validate_file(project, usecase.load(project, use_case), file)
    typer.echo(report.render())
    if not report.success:
        raise typer.Exit(1)


@data_app.command("add")
def data_add(file: FileArgument, use_case: UseCaseOption) -> None:
    """Validate FILE, merge it into the use case's dataset and record a new data version."""
    from pipelines import runtime
    from pipelines.flows.data import add_batch

    project = _project()
    with runtime.prefect_api(runtime.DATA_MODULES, project.state_dir / "prefect-server.log",
                             notify=_notify):
        result = add_batch(use_case, str(file), str(project.root))
    for report in result.reports:
        typer.echo(report.headline())
    if result.version is None:
        typer.echo(f"nothing new: all {result.duplicates_dropped} rows are already in the "
                   "dataset; data version unchanged")
        return
    typer.echo(f"added {result.new_rows} rows ({result.duplicates_dropped} exact duplicates "
               f"dropped); {use_case} now has {result.version.rows[use_case]} rows")
    typer.echo(f"data version {result.version.version}")


@data_app.command("checkout")
def data_checkout(version: Annotated[str, typer.Argument(help="Data version (the DVC md5), e.g. from "
                                                              "`mlops lineage`.")]) -> None:
    """Restore data/ to an earlier data version and point data.dvc at it."""
    from pipelines.versioning import DataVersions

    versions = DataVersions(_project())
    restored = versions.checkout(version)
    typer.echo(f"data version {restored} restored in data/; `git checkout data.dvc && mlops data pull` "
               "returns to the committed version")


@data_app.command("versions")
def data_versions(use_case: UseCaseOption) -> None:
    """List the data versions that changed the use case's dataset, oldest first."""
    from pipelines import usecase
    from pipelines.versioning import DataVersions

    project = _project()
    name = usecase.load(project, use_case).name
    versions = DataVersions(project)
    current = versions.current()
    rows = [(r.version, r.time, str(r.rows.get(name, "")), r.source,
             "(current)" if r.version == current else "")
            for r in versions.history() if name in r.use_cases]
    header = ("VERSION", "TIME", "ROWS", "SOURCE", "")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths,
                                                                       strict=True)).rstrip())


@app.command("run")
def run(
    use_case: UseCaseOption = "all",
    candidates: Annotated[str | None, typer.Option(
        "--candidates", "-c", help="Comma-separated subset of the use case's candidates.")] = None,
) -> None:
    """Run a full cycle: validate, version, train competing models, register, promote, report."""
    from models.candidates import CANDIDATE_FAMILIES
    from pipelines import runtime, usecase
    from pipelines.flows.cycle import CycleFailedError, retrain, run_cycle
    from pipelines.modeling import modeling_spec

    project = _project()
    chosen = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    use_cases = usecase.resolve(project, use_case)
    specs = [modeling_spec(u) for u in use_cases]
    if chosen:
        specs = [spec.with_candidates(chosen) for spec in specs]
    modules = runtime.cycle_modules(CANDIDATE_FAMILIES[c.model] for spec in specs for c in spec.candidates)
    try:
        with runtime.prefect_api(modules, project.state_dir / "prefect-server.log", notify=_notify):
            if len(use_cases) == 1:
                outcomes = [retrain(use_cases[0].name, str(project.root), chosen)]
            else:
                outcomes = run_cycle(use_case, str(project.root), chosen)
    except CycleFailedError as exc:
        for outcome in exc.outcomes:
            typer.echo(outcome.summary() + "\n")
        raise
    for outcome in outcomes:
        typer.echo(outcome.summary() + "\n")


models_app = typer.Typer(help="Registered models, their versions and aliases.", no_args_is_help=True)
app.add_typer(models_app, name="models")
ModelArgument = Annotated[str, typer.Argument(help="Registered model name (the use case's, e.g. marketing).")]
ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="Why; recorded on the version.")]


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@models_app.command("list")
def models_list(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    limit: Annotated[int, typer.Option(help="Versions shown per model, newest first.")] = 10,
) -> None:
    """Registered models with their recent versions, aliases and holdout scores."""
    from pipelines import registry, tracking

    client = tracking.client(_project())
    names = [model] if model else sorted(m.name for m in client.search_registered_models())
    if not names:
        typer.echo("no registered models yet: run `mlops run` first")
        return
    for name in names:
        registered = registry.registered_model(client, name)
        versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: -int(v.version))
        aliases: dict[str, list[str]] = {}
        for alias, number in (registered.aliases or {}).items():
            aliases.setdefault(str(number), []).append(alias)
        typer.echo(f"{name} ({len(versions)} versions)")
        rows = []
        for version in versions[:limit]:
            tags = version.tags
            primary = tags.get("primary_metric", "")
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(version.creation_timestamp / 1000))
            rows.append((f"v{version.version}", ",".join(sorted(aliases.get(str(version.version), []))),
                         tags.get("candidate", ""), f"{primary} {tags.get(f'holdout_{primary}', '')}".strip(),
                         tags.get("data_version", "")[:12], created))
        _table(("  VERSION", "ALIASES", "CANDIDATE", "HOLDOUT", "DATA", "CREATED"),
               [("  " + r[0], *r[1:]) for r in rows])


def _actor(command: str) -> str:
    import getpass

    try:
        return f"{getpass.getuser()} via mlops {command}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return f"mlops {command}"


@app.command("promote")
def promote(model: ModelArgument, version: Annotated[str, typer.Argument(help="Version number.")],
            reason: ReasonOption = "promoted by hand") -> None:
    """Make VERSION the champion of MODEL (recording when, by whom and why)."""
    from pipelines import registry, tracking

    client = tracking.client(_project())
    number = version.lstrip("v")
    previous = registry.version_by_alias(client, model, registry.CHAMPION)
    if previous is not None and str(previous.version) == number:
        registry.get_version(client, model, number)
        typer.echo(f"{model}: v{number} is already the champion; nothing changed")
        return
    registry.set_champion(client, model, number, reason, _actor("promote"))
    was = f" (was v{previous.version})" if previous else ""
    typer.echo(f"{model}: champion is now v{number}{was}")


@app.command("rollback")
def rollback(model: ModelArgument, reason: ReasonOption = "rolled back by hand") -> None:
    """Give the champion alias back to the previous champion of MODEL."""
    from pipelines import registry, tracking

    client = tracking.client(_project())
    current, target = registry.rollback(client, model, reason, _actor("rollback"))
    typer.echo(f"{model}: champion rolled back from v{current} to v{target}")


@app.command("lineage")
def lineage(reference: Annotated[str, typer.Argument(
        help="MODEL@ALIAS (e.g. marketing@champion), MODEL/VERSION, or MODEL for its champion.")]) -> None:
    """Trace a model version back to its run, data version and commit, and how to restore that data."""
    from pipelines import lineage as lineage_report
    from pipelines import tracking

    project = _project()
    typer.echo(lineage_report.describe(project, tracking.client(project), reference))


@app.command("predict")
def predict(
    file: Annotated[Path, typer.Argument(help="CSV file (optionally .gz) of rows to score; "
                                              "a label column is ignored.")],
    use_case: UseCaseOption,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where to write the predictions (CSV; default "
                               "predictions/<use case>-<UTC time>.csv in the project).")] = None,
) -> None:
    """Validate FILE and score it with the use case's champion model; write the predictions as CSV."""
    from pipelines import runtime
    from pipelines.flows.predict import modules_to_preload
    from pipelines.flows.predict import predict as predict_flow

    project = _project()
    with runtime.prefect_api(modules_to_preload(project, use_case), project.state_dir / "prefect-server.log",
                             notify=_notify):
        result = predict_flow(use_case, str(file), str(project.root),
                              str(output.resolve()) if output else None)
    typer.echo(result.summary())


@app.command("serve")
def serve(
    use_case: UseCaseOption = "all",
    poll: Annotated[float, typer.Option(help="Seconds between looks at the landing zone.")] = 10.0,
    host: Annotated[str, typer.Option(help="Interface of the local Prefect server.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(
        help="Port of the local Prefect server (default 4200, or a free one when 4200 is taken).")] = None,
) -> None:
    """Retrain on schedule and on new data: serve the deployments and watch data/incoming/."""
    from pipelines import serving, usecase

    project = _project()
    use_cases = usecase.resolve(project, use_case)
    if poll <= 0:
        raise typer.BadParameter("must be positive", param_hint="--poll")
    serving.serve(project, use_cases, poll, host, port, notify=_notify)


@app.command("ui")
def ui(port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
       host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1") -> None:
    """Start the MLflow UI on the project's tracking store (Ctrl-C stops it)."""
    from pipelines import tracking

    project = _project()
    uri = tracking.tracking_uri(project)
    if not tracking.is_local_store(uri):
        typer.echo(f"runs are tracked on {uri}; open it in a browser")
        return
    typer.echo(f"MLflow UI on http://{host}:{port} for {uri} (Ctrl-C to stop)")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--default-artifact-root", (project.root / tracking.ARTIFACTS_DIR).as_uri(),
               "--host", host, "--port", str(port)]
    os.execv(sys.executable, command)


def main() -> None:
    from pipelines import runtime

    os.environ.setdefault("DVC_NO_ANALYTICS", "true")
    # A temporary Prefect server otherwise tries to send usage data, and logs an error when offline.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Progress bars of artifact downloads would interleave with the flow logs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    runtime.skip_teardown_at_exit()
    try:
        status = _run_app()
    finally:
        if "prefect.logging.handlers" in sys.modules:
            runtime.drain_prefect()
    runtime.exit_without_teardown(status)


def _notify(message: str) -> None:
    typer.echo(message, err=True)


def _run_app() -> int:
    try:
        app()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        typer.echo(exc.code, err=True)
        return 1
    except MlopsError as exc:
        _echo_error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _echo_error("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    main()
