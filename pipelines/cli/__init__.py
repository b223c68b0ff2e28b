"""The ``mlops`` command line: parse, call a flow, print. Heavy libraries load inside commands."""

from __future__ import annotations

import traceback
from typing import Annotated

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
for command in (cycle.run, cycle.check, cycle.predict, cycle.serve, cycle.deploy, cycle.doctor,
                models.promote, models.rollback, models.lineage, models.ui):
    app.command(command.__name__)(command)


@app.callback()
def options(debug: Annotated[bool, typer.Option(
        "--debug", help="Show tracebacks on the terminal too (or set MLOPS_DEBUG=1); they are always "
                        "in .mlops/logs/mlops.log.")] = False) -> None:
    if debug:
        from pipelines.flows import session

        session.enable_debug()


def main() -> None:
    from pipelines.flows import session

    session.begin()
    session.end(_run_app())


def _run_app() -> int:
    try:
        app()
    except SystemExit as exc:
        if not exc.code:
            return 0
        if (stopped := _interrupted()) is not None:
            return stopped
        if isinstance(exc.code, int):
            return exc.code
        typer.echo(exc.code, err=True)
        return 1
    except MlopsError as exc:
        return _interrupted() or _fail(exc)
    except Exception as exc:  # noqa: BLE001 - a bug: one line here, its traceback in the log
        return _interrupted() or _fail_unexpectedly(exc)
    except KeyboardInterrupt:
        if (stopped := _interrupted()) is not None:
            return stopped
        typer.secho("error: interrupted", fg=typer.colors.RED, err=True)
        return 130
    except BaseException:
        # Prefect's termination signal or a fit's stop, on the way out of an interrupted command.
        if (stopped := _interrupted()) is None:
            raise
        return stopped
    return 0


def _interrupted() -> int | None:
    """After SIGINT or SIGTERM: one line, and 130 or 143, whatever the unwinding work raised."""
    from pipelines.flows import session

    stop = session.interruption()
    if stop is None:
        return None
    status, reason = stop
    typer.secho(f"error: {reason}", fg=typer.colors.RED, err=True)
    return status


def _fail(error: MlopsError) -> int:
    from pipelines.flows import session

    session.record_failure(error)
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    return error.exit_code


def _fail_unexpectedly(error: Exception) -> int:
    from pipelines.flows import session

    log = session.record_failure(error)
    if session.debugging():
        traceback.print_exception(error)
        where = ""
    elif log is not None:
        where = f" (traceback in {log}; run with --debug to show it)"
    else:
        where = " (run with --debug to show the traceback)"
    typer.secho(f"error: unexpected {type(error).__name__}: {error}{where}", fg=typer.colors.RED, err=True)
    return 1


if __name__ == "__main__":
    main()
