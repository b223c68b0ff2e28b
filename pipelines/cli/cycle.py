"""`mlops run`, `check`, `predict`, `serve`, `deploy` and `doctor`: cycles, definitions, predictions,
retraining, and the services behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.common import UseCaseOption, notify, project, table


def run(
    use_case: UseCaseOption = "all",
    candidates: Annotated[str | None, typer.Option(
        "--candidates", "-c", help="Comma-separated subset of the use case's candidates.")] = None,
    tune: Annotated[bool, typer.Option(
        "--tune/--no-tune", help="Search hyperparameters within the use case's `tuning` budget "
                                 "(--no-tune: candidates keep their declared ones).")] = True,
) -> None:
    """Run a full cycle: validate, version, train competing models, register, promote, report."""
    from pipelines.flows import cycle

    chosen = [c.strip() for c in candidates.split(",") if c.strip()] if candidates else None
    try:
        outcomes = cycle.run(project(), use_case, chosen, notify, tune=tune)
    except cycle.CycleFailedError as exc:
        for outcome in exc.outcomes:
            typer.echo(outcome.summary() + "\n")
        raise
    for outcome in outcomes:
        typer.echo(outcome.summary() + "\n")


def check(
    use_case: UseCaseOption = "all",
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON Schema of a use case "
                                                          "definition and exit.")] = False,
) -> None:
    """Check use case definitions, suites and candidates without training; exit 1 on any problem."""
    if schema:
        from pipelines.config.definitions import schema_text

        typer.echo(schema_text(), nl=False)
        return
    from pipelines.flows.check import check as check_definitions

    results = check_definitions(project(), use_case)
    for result in results:
        verdict = "ok" if not result.problems else f"{len(result.problems)} problem(s)"
        typer.echo(f"{result.use_case}: {verdict}" + "".join(f"; {note}" for note in result.notes))
        for problem in result.problems:
            typer.echo(f"  x {problem}")
    if any(result.problems for result in results):
        raise typer.Exit(1)


def predict(
    file: Annotated[Path, typer.Argument(help="CSV file (optionally .gz) of rows to score; "
                                              "a label column is ignored.")],
    use_case: Annotated[str, typer.Option("--use-case", "-u", help="Use case name.")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Where to write the predictions (CSV; default "
                               "predictions/<use case>-<UTC time>.csv in the project).")] = None,
) -> None:
    """Validate FILE and score it with the use case's champion model; write the predictions as CSV."""
    from pipelines.flows import predict as predictions

    typer.echo(predictions.run(project(), use_case, file, output, notify).summary())


def serve(
    use_case: UseCaseOption = "all",
    poll: Annotated[float, typer.Option(help="Seconds between looks at the landing zone.")] = 10.0,
    host: Annotated[str, typer.Option(help="Interface of the local Prefect server.")] = "127.0.0.1",
    port: Annotated[int | None, typer.Option(
        help="Port of the local Prefect server (default 4200, or a free one when 4200 is taken).")] = None,
) -> None:
    """Retrain on schedule and on new data: serve the deployments and watch data/incoming/."""
    from pipelines.flows.serve import serve as serve_retraining

    if poll <= 0:
        raise typer.BadParameter("must be positive", param_hint="--poll")
    serve_retraining(project(), use_case, poll, host, port, notify)


def deploy(use_case: UseCaseOption = "all") -> None:
    """Register the retraining and prediction deployments on MLOPS_WORK_POOL, for its workers to run."""
    from pipelines.flows.serve import deploy as deploy_on_pool

    deploy_on_pool(project(), use_case, notify)


def doctor() -> None:
    """Check every backend in use: tracking, registry, artifacts, Prefect, DVC remote, Dask when set."""
    from pipelines.flows.doctor import examine

    found = examine(project())

    def mark(value: bool | None) -> str:
        return {True: "yes", False: "NO", None: "-"}[value]

    table(("backend", "in use", "answers", "credentials", "version"),
          [(p.backend, p.in_use, mark(p.answers), mark(p.credentials), p.version) for p in found])
    problems = [p for p in found if not p.ok]
    for probe in problems:
        typer.echo(f"{probe.backend}: {probe.hint or 'does not answer'}")
    if problems:
        raise typer.Exit(1)
    typer.echo("all backends answer")
