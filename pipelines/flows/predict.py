"""Batch predictions: validate a file, score it with the champion model, write the use case's table.

A Prefect flow, so it runs from ``mlops predict`` and can equally be deployed on a schedule. Nothing
is logged to MLflow: a prediction is not an experiment. What was scored, with which version, and
where it went is one line in the flow run's log.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from pipelines.adapters import files, runtime
from pipelines.adapters import great_expectations as validation
from pipelines.adapters.great_expectations import ValidationReport
from pipelines.adapters.registry import CHAMPION, Registry
from pipelines.adapters.tracker import TAG_CANDIDATE, TAG_DATA_VERSION, TAG_FAMILY
from pipelines.config import definitions
from pipelines.config.errors import ValidationFailedError
from pipelines.config.project import Project
from pipelines.config.usecase import RANKED_LIST, UseCase
from pipelines.flows.data import BATCH_MIN_ROWS, ensure_data
from pipelines.nodes import scoring
from pipelines.nodes.scoring import ScoringLayout

VALIDATION_SUBJECT = "scoring"


@dataclass(frozen=True)
class Champion:
    registered_model: str
    version: str
    model: Any

    def describe(self) -> str:
        return f"{self.registered_model} v{self.version} ({CHAMPION})"


@dataclass(frozen=True)
class Predictions:
    use_case: str
    source: str
    output: str
    scored_rows: int
    """Rows of the source file."""
    rows: int
    """Rows written: one per file row, or one per group for ``latest_per_group``."""
    registered_model: str
    version: str

    def summary(self) -> str:
        return (f"scored {self.scored_rows} rows of {Path(self.source).name} with {self.registered_model} "
                f"v{self.version} ({CHAMPION})\n"
                f"wrote {self.rows} prediction{'' if self.rows == 1 else 's'} to {self.output}")


def _log(message: str) -> None:
    get_run_logger().info(message)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()[:12]


@task(name="validate", cache_policy=NO_CACHE)
def validate(project: Project, use_case: UseCase, frame: pd.DataFrame,
             source: Path) -> tuple[pd.DataFrame, ValidationReport]:
    """The rows without their label, and their report against the suite minus the label's checks."""
    labels = list(use_case.label_columns)
    report = validation.run_suite(project, use_case, frame, subject=VALIDATION_SUBJECT, source=str(source),
                                  min_rows=BATCH_MIN_ROWS, omit_columns=labels)
    if report.success:
        _log(report.headline())
    else:
        get_run_logger().error(report.render())
    # Dropped here, before any model sees the rows, so a label in the file cannot change a score.
    return frame.drop(columns=[c for c in labels if c in frame.columns]), report


@task(name="load champion", cache_policy=NO_CACHE)
def load_champion(project: Project, use_case: UseCase, version: Any) -> Champion:
    # The version number, not the alias: a promotion meanwhile cannot change which model scores.
    model = Registry(project).load_model(use_case.registered_model, str(version.version))
    champion = Champion(use_case.registered_model, str(version.version), model)
    _log(f"scoring with {champion.describe()}, candidate {version.tags.get(TAG_CANDIDATE, '?')}, "
         f"data version {version.tags.get(TAG_DATA_VERSION, '?')}")
    return champion


def _dataset(project: Project, use_case: UseCase) -> pd.DataFrame | None:
    ensure_data(project)
    path = use_case.dataset_path(project)
    if not path.exists():
        return None
    project.state_dir.mkdir(parents=True, exist_ok=True)
    # A batch being added appends to the file; the lock keeps a half-written row out of the history.
    with FileLock(project.lock_file):
        return files.read_table(path, use_case)


@task(name="score", cache_policy=NO_CACHE)
def score(project: Project, use_case: UseCase, layout: ScoringLayout, frame: pd.DataFrame,
          champion: Champion) -> pd.DataFrame:
    from models.evaluation import positive_scores

    if layout.output == RANKED_LIST:
        return scoring.ranked_list(frame, positive_scores(champion.model, frame, use_case.task), layout)
    dataset = _dataset(project, use_case) if layout.history else None
    combined, from_file = scoring.with_history(frame, dataset, layout)
    _log(f"{int((~from_file).sum())} earlier rows of the same {layout.group or 'series'} "
         f"prepended from {use_case.dataset} for features that look back")
    short = scoring.history_shortfalls(combined, from_file, layout)
    if short:
        listed = ", ".join(f"{group or use_case.name} ({rows})" for group, rows in sorted(short.items()))
        get_run_logger().warning(f"fewer than {layout.history} rows of history for {listed}: "
                                 "features that look further back are filled as 'no change'")
    scores = positive_scores(champion.model, combined, use_case.task)
    return scoring.latest_per_group(combined, from_file, scores, layout)


@task(name="write predictions", cache_policy=NO_CACHE)
def write(table: pd.DataFrame, output: Path) -> Path:
    files.write_atomically(table, output)
    return output


@flow(name="predict", log_prints=True)
def predict(use_case_name: str, path: str, project_root: str | None = None,
            output: str | None = None) -> Predictions:
    """Score the rows of ``path`` with the use case's champion; write them to ``output``.

    ``output`` defaults to ``predictions/<use case>-<UTC time>.csv`` in the project.
    """
    project = Project.find(project_root)
    use_case = definitions.load(project, use_case_name)
    source = Path(path).resolve()
    # Expected failures are raised here rather than inside a task, so the log shows them once.
    frame, report = validate(project, use_case, files.read_table(source, use_case), source)
    if not report.success:
        raise ValidationFailedError(f"nothing scored: {report.headline()}", report)
    version = Registry(project).require_champion(use_case.registered_model, use_case.name)
    champion = load_champion(project, use_case, version)
    table = score(project, use_case, scoring.layout(use_case), frame, champion)
    target = (Path(output).resolve() if output
              else scoring.default_output(project, use_case.name, datetime.now(UTC)))
    written = write(table, target)
    _log(f"scored {len(frame)} rows of {source} (sha256 {_digest(source)}) with {champion.describe()}: "
         f"{len(table)} predictions written to {written}")
    return Predictions(use_case.name, str(source), str(written), len(frame), len(table),
                       champion.registered_model, champion.version)


def modules_to_preload(project: Project, use_case_name: str) -> Iterator[str]:
    """The libraries a prediction imports, the champion's model family included.

    A generator: the registry is asked only when the caller iterates, which ``runtime.prefect_api``
    does while a temporary Prefect server boots. Any failure is left for the flow to report.
    """
    yield from runtime.PREDICT_MODULES
    try:
        use_case = definitions.load(project, use_case_name)
        champion = Registry(project).champion(use_case.registered_model)
    except Exception:  # noqa: BLE001 - the flow reports these with its own, better context
        return
    if champion is not None:
        yield from runtime.family_modules([champion.tags.get(TAG_FAMILY, "")])


def run(project: Project, use_case_name: str, path: Path, output: Path | None,
        notify: Callable[[str], None]) -> Predictions:
    """``mlops predict``: the ``predict`` flow on a Prefect API."""
    definitions.load(project, use_case_name)
    with runtime.prefect_api(modules_to_preload(project, use_case_name),
                             project.state_dir / "prefect-server.log", notify=notify):
        return predict(use_case_name, str(path), str(project.root), str(output.resolve()) if output else None)
