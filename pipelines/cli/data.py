"""`mlops data`: pull, validate, add, checkout and list versions of the datasets."""

from __future__ import annotations

from typing import Annotated

import typer

from pipelines.cli.common import FileArgument, UseCaseOption, notify, project, table

app = typer.Typer(help="Pull, validate, add and list versions of the datasets.", no_args_is_help=True)


@app.command("pull")
def pull() -> None:
    """Restore data/ to the version data.dvc names (offline for the shipped sample)."""
    from pipelines.flows import data

    version, clean = data.pull(project(), notify)
    state = "clean" if clean else "NOT clean: see `dvc status`"
    typer.echo(f"data version {version} restored in data/ (dvc status: {state})")


@app.command("validate")
def validate(file: FileArgument, use_case: UseCaseOption,
             docs: Annotated[bool, typer.Option(
                 "--docs", help="Update the Data Docs even when FILE passes (a failure always "
                                "does).")] = False) -> None:
    """Check FILE against the use case's expectation suite; exit 1 when it fails."""
    # Not the data flows: a quick check need not wait for Prefect to load.
    from pipelines.flows import file_check

    report = file_check.check_file(project(), use_case, file, docs)
    typer.echo(report.render())
    if not report.success:
        raise typer.Exit(1)


@app.command("add")
def add(file: FileArgument, use_case: UseCaseOption) -> None:
    """Validate FILE, merge it into the use case's dataset and record a new data version."""
    from pipelines.flows import data

    result = data.add(project(), use_case, file, notify)
    for report in result.reports:
        typer.echo(report.headline())
    if result.version is None:
        typer.echo(f"nothing new: all {result.duplicates_dropped} rows are already in the "
                   "dataset; data version unchanged")
        return
    typer.echo(f"added {result.new_rows} rows ({result.duplicates_dropped} exact duplicates "
               f"dropped); {use_case} now has {result.version.rows[use_case]} rows")
    typer.echo(f"data version {result.version.version}")


@app.command("checkout")
def checkout(version: Annotated[str, typer.Argument(
        help="Data version (the DVC md5), e.g. from `mlops lineage`.")]) -> None:
    """Restore data/ to an earlier data version and point data.dvc at it."""
    from pipelines.flows import data

    restored = data.checkout(project(), version, notify)
    typer.echo(f"data version {restored} restored in data/; `git checkout data.dvc && mlops data pull` "
               "returns to the committed version")


@app.command("versions")
def versions(use_case: UseCaseOption) -> None:
    """List the data versions that changed the use case's dataset, oldest first."""
    from pipelines.flows import data

    records, current = data.history(project(), use_case, notify)
    rows = [(r.version, r.time, str(r.rows.get(use_case, "")), r.source,
             "(current)" if r.version == current else "") for r in records]
    table(("VERSION", "TIME", "ROWS", "SOURCE", ""), rows)
