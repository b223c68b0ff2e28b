"""The ``mlops`` command line: parse, call a flow, print. Heavy libraries load inside commands."""

from __future__ import annotations

import typer

from pipelines.cli import cycle, data, models
from pipelines.config.errors import MlopsError

app = typer.Typer(
    help="Validated, versioned data and competing models for each use case.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data.app, name="data")
app.add_typer(models.app, name="models")
for command in (cycle.run, cycle.check, cycle.predict, cycle.serve, models.promote, models.rollback,
                models.lineage, models.ui):
    app.command(command.__name__)(command)


def main() -> None:
    from pipelines.flows import session

    session.begin()
    session.end(_run_app())


def _run_app() -> int:
    try:
        app()
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        typer.echo(exc.code, err=True)
        return 1
    except MlopsError as exc:
        return _fail(exc)
    except KeyboardInterrupt:
        typer.secho("error: interrupted", fg=typer.colors.RED, err=True)
        return 130
    return 0


def _fail(error: MlopsError) -> int:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    return error.exit_code


if __name__ == "__main__":
    main()
