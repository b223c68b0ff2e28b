"""The ``mlops`` command line. Heavy libraries are imported inside commands, so help is instant."""

from __future__ import annotations

import os
import sys
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
    from pipelines.flows.data import add_batch

    project = _project()
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
def run(use_case: UseCaseOption = "all") -> None:
    """Run a cycle for a use case (or all): restore and validate its versioned data."""
    from pipelines.flows.cycle import run_cycle

    project = _project()
    for outcome in run_cycle(use_case, str(project.root)):
        typer.echo(outcome)


def main() -> None:
    os.environ.setdefault("DVC_NO_ANALYTICS", "true")
    try:
        app()
    except MlopsError as exc:
        _echo_error(str(exc))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _echo_error("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
