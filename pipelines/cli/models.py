"""`mlops models`, `promote`, `rollback`, `lineage`, `ui`: the registry and the MLflow UI."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from pipelines.cli.common import project, table

app = typer.Typer(help="Registered models, their versions and aliases.", no_args_is_help=True)
ModelArgument = Annotated[str, typer.Argument(help="Registered model name (the use case's, e.g. marketing).")]
ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="Why; recorded on the version.")]


@app.command("list")
def list_models(
    model: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    limit: Annotated[int, typer.Option(help="Versions shown per model, newest first.")] = 10,
) -> None:
    """Registered models with their recent versions, aliases and holdout scores."""
    from pipelines.flows import registry

    listed = registry.versions(project(), model, limit)
    if not listed:
        typer.echo("no registered models yet: run `mlops run` first")
    for name, (count, rows) in listed.items():
        typer.echo(f"{name} ({count} versions)")
        table(("  VERSION", "ALIASES", "CANDIDATE", "HOLDOUT", "DATA", "CREATED"),
              [(f"  {r.version}", r.aliases, r.candidate, r.holdout, r.data_version, r.created)
               for r in rows])


def _actor(command: str) -> str:
    import getpass

    try:
        return f"{getpass.getuser()} via mlops {command}"
    except Exception:  # noqa: BLE001 - no login name in some containers
        return f"mlops {command}"


def promote(model: ModelArgument, version: Annotated[str, typer.Argument(help="Version number.")],
            reason: ReasonOption = "promoted by hand") -> None:
    """Make VERSION the champion of MODEL (recording when, by whom and why)."""
    from pipelines.flows import registry

    typer.echo(registry.promote(project(), model, version.lstrip("v"), reason, _actor("promote")))


def rollback(model: ModelArgument, reason: ReasonOption = "rolled back by hand") -> None:
    """Give the champion alias back to the previous champion of MODEL."""
    from pipelines.flows import registry

    typer.echo(registry.rollback(project(), model, reason, _actor("rollback")))


def lineage(reference: Annotated[str, typer.Argument(
        help="MODEL@ALIAS (e.g. marketing@champion), MODEL/VERSION, or MODEL for its champion.")]) -> None:
    """Trace a model version back to its run, data version and commit, and how to restore that data."""
    from pipelines.flows import registry

    typer.echo(registry.lineage(project(), reference))


def ui(port: Annotated[int, typer.Option(help="Port to listen on.")] = 5000,
       host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1") -> None:
    """Start the MLflow UI on the project's tracking store (Ctrl-C stops it)."""
    from pipelines.flows import registry

    message, command = registry.ui_command(project(), host, port)
    typer.echo(message)
    if command is not None:
        os.execv(command[0], command)
