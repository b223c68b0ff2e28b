"""What every command shares: the project, the options, and how things are printed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

UseCaseOption = Annotated[str, typer.Option("--use-case", "-u", help="Use case name, or all.")]
FileArgument = Annotated[Path, typer.Argument(help="CSV file (optionally .gz).")]

if TYPE_CHECKING:
    from pipelines.config.project import Project


def project() -> Project:
    """The project the command acts on; from here on, its log file records the command."""
    # Imported here: reading the settings loads pydantic, which `mlops --help` need not wait for.
    from pipelines.config.project import Project
    from pipelines.flows import session

    found = Project.find()
    session.attach_log(found)
    return found


def notify(message: str) -> None:
    typer.echo(message, err=True)


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
