"""When a use case retrains: its ``retraining:`` section, as `mlops serve` reads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.errors import UseCaseError
from pipelines.usecase import UseCase

ON_NEW_DATA = ("always", "drift", "never")
DEFAULT_SCHEDULE = "0 6 * * 1"  # weekly, Mondays 06:00 UTC


@dataclass(frozen=True)
class RetrainingSpec:
    schedule: str | None
    """Cron expression (UTC) of the scheduled retraining; None turns the schedule off."""
    on_new_data: str
    """What an accepted file in the landing zone starts: always, only on drift, or never."""
    drift_threshold: float
    """Population stability index, above sampling noise, of the most shifted input column."""
    drift_view: str | None
    """``module:Transformer`` whose output columns are compared instead of the raw inputs."""
    drift_min_rows: int
    """Batches smaller than this are versioned but not judged for drift: too few rows to tell."""


def retraining_spec(use_case: UseCase) -> RetrainingSpec:
    raw: Any = use_case.settings.get("retraining", {}) or {}
    where = f"use case '{use_case.name}': retraining"
    if not isinstance(raw, dict):
        raise UseCaseError(f"{where} must be a mapping")
    unknown = set(raw) - {"schedule", "on_new_data", "drift_threshold", "drift_view", "drift_min_rows"}
    if unknown:
        raise UseCaseError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    schedule = raw.get("schedule", DEFAULT_SCHEDULE)
    if schedule is not None:
        schedule = str(schedule)
        _check_cron(schedule, where)
    on_new_data = str(raw.get("on_new_data", "always"))
    if on_new_data not in ON_NEW_DATA:
        raise UseCaseError(f"{where}.on_new_data must be one of {', '.join(ON_NEW_DATA)}, "
                           f"not '{on_new_data}'")
    try:
        threshold = float(raw.get("drift_threshold", 0.25))
        min_rows = int(raw.get("drift_min_rows", 200))
    except (TypeError, ValueError) as exc:
        raise UseCaseError(f"{where}: drift_threshold and drift_min_rows must be numbers") from exc
    if threshold <= 0 or min_rows < 1:
        raise UseCaseError(f"{where}: drift_threshold must be > 0 and drift_min_rows >= 1")
    view = raw.get("drift_view")
    return RetrainingSpec(schedule, on_new_data, threshold, str(view) if view else None, min_rows)


def _check_cron(expression: str, where: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=expression, timezone="UTC")
    except ValueError as exc:
        raise UseCaseError(f"{where}.schedule '{expression}' is not a cron expression "
                           "(minute hour day-of-month month day-of-week)") from exc
