"""What batch predictions look like for a use case: the ``scoring:`` section, and the tables it makes.

Two shapes of output cover the shipped use cases, and any new one picks a shape in its definition:

- ``ranked_list``: every row of the file, best first, with a decile (1 = the top tenth);
- ``latest_per_group``: one row per group (e.g. per ticker), the group's latest row in the file,
  scored with the group's earlier rows from the dataset prepended so that lagged and rolling
  features see a full history.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.errors import UseCaseError
from pipelines.modeling import ModelingSpec
from pipelines.project import Project

RANKED_LIST = "ranked_list"
LATEST_PER_GROUP = "latest_per_group"
OUTPUTS = (RANKED_LIST, LATEST_PER_GROUP)
DEFAULT_SCORE_COLUMN = {"classification": "probability", "regression": "prediction"}
DEFAULT_HISTORY = 60
DECILE_COLUMN = "decile"
PREDICTIONS_DIR = "predictions"
_FIELDS = {"output", "score", "group", "history"}


@dataclass(frozen=True)
class ScoringSpec:
    use_case: str
    output: str
    """``ranked_list`` or ``latest_per_group``."""
    key: tuple[str, ...]
    """Columns that identify a row in the output."""
    score_column: str
    label_columns: tuple[str, ...]
    """Columns a scoring file need not have and that are never scored: the label."""
    group: str | None = None
    order_column: str | None = None
    order_format: str | None = None
    history: int = 0
    """Earlier rows per group taken from the dataset to compute features of the file's rows."""


def scoring_spec(spec: ModelingSpec) -> ScoringSpec:
    """Read and check the ``scoring:`` section of a use case (all of it optional)."""
    use_case = spec.use_case
    raw = use_case.settings.get("scoring") or {}
    where = f"use case {use_case.name}: scoring"
    if not isinstance(raw, dict):
        raise UseCaseError(f"{where} must be a mapping such as {{output: {RANKED_LIST}}}")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise UseCaseError(f"{where} has unknown fields {', '.join(unknown)} "
                           f"(allowed: {', '.join(sorted(_FIELDS))})")
    order = use_case.order
    # A time series is scored at its latest point; a table of independent rows is ranked.
    default_output = LATEST_PER_GROUP if order else RANKED_LIST
    output = raw.get("output", default_output)
    if output not in OUTPUTS:
        raise UseCaseError(f"{where}: output {output!r} is not one of {', '.join(OUTPUTS)}")
    score_column = _score_column(raw.get("score"), spec.task, where)
    labels = tuple(c for c in spec.non_inputs if c not in use_case.key)
    if score_column in use_case.key:
        raise UseCaseError(f"{where}: score column {score_column!r} is also a key column")
    if output == RANKED_LIST:
        extra = sorted({"group", "history"} & set(raw))
        if extra:
            raise UseCaseError(f"{where}: {' and '.join(extra)} only apply to output {LATEST_PER_GROUP}")
        return ScoringSpec(use_case.name, output, use_case.key, score_column, labels)

    if order is None:
        raise UseCaseError(f"{where}: output {LATEST_PER_GROUP} needs the use case's 'order' "
                           "(the column that says which row is the latest)")
    group = raw.get("group", order.within)
    if group is not None and group not in use_case.key:
        raise UseCaseError(f"{where}: group {group!r} must be one of the key columns "
                           f"({', '.join(use_case.key)})")
    history = raw.get("history", DEFAULT_HISTORY)
    if isinstance(history, bool) or not isinstance(history, int) or history < 0:
        raise UseCaseError(f"{where}: history must be a whole number of rows (0 or more), got {history!r}")
    return ScoringSpec(use_case.name, output, use_case.key, score_column, labels, group=group,
                       order_column=order.column, order_format=use_case.date_columns.get(order.column),
                       history=history)


def _score_column(raw: Any, task: str, where: str) -> str:
    if isinstance(raw, dict):
        raw = raw.get(task)
    name = raw if raw is not None else DEFAULT_SCORE_COLUMN[task]
    if not isinstance(name, str) or not name.strip():
        raise UseCaseError(f"{where}: score must be a column name (or one per task), got {raw!r}")
    return name


# --- the tables -----------------------------------------------------------------------------

def _groups(frame: pd.DataFrame, group: str | None) -> pd.Series:
    if group is None:
        return pd.Series("", index=frame.index)
    return frame[group].astype(str)


def _order_values(frame: pd.DataFrame, scoring: ScoringSpec) -> pd.Series:
    column = frame[scoring.order_column]
    if scoring.order_format:
        return pd.to_datetime(column, format=scoring.order_format)
    return column


def with_history(frame: pd.DataFrame, dataset: pd.DataFrame | None,
                 scoring: ScoringSpec) -> tuple[pd.DataFrame, np.ndarray]:
    """The file's rows preceded by each group's last ``history`` earlier rows from ``dataset``.

    Returns the combined table and a mask of the rows that came from the file. Dataset rows whose
    key is in the file are left out: the file's version of a row wins.
    """
    if dataset is None or dataset.empty or scoring.history == 0:
        return frame, np.ones(len(frame), dtype=bool)
    groups = _groups(frame, scoring.group)
    first = _order_values(frame, scoring).groupby(groups).min()
    candidates = dataset[_groups(dataset, scoring.group).isin(first.index)]
    key = list(scoring.key)
    in_file = pd.MultiIndex.from_frame(candidates[key].astype(str)).isin(
        pd.MultiIndex.from_frame(frame[key].astype(str)))
    candidates = candidates[~in_file]
    candidate_groups = _groups(candidates, scoring.group)
    earlier = candidates[_order_values(candidates, scoring) < candidate_groups.map(first)]
    order = _order_values(earlier, scoring)
    earlier = (earlier.assign(_group=_groups(earlier, scoring.group), _order=order)
               .sort_values(["_group", "_order"], kind="stable")
               .groupby("_group", sort=False).tail(scoring.history)
               .drop(columns=["_group", "_order"]))
    combined = pd.concat([earlier.reindex(columns=frame.columns), frame], ignore_index=True)
    from_file = np.r_[np.zeros(len(earlier), dtype=bool), np.ones(len(frame), dtype=bool)]
    return combined, from_file


def history_shortfalls(combined: pd.DataFrame, from_file: np.ndarray,
                       scoring: ScoringSpec) -> dict[str, int]:
    """Groups with fewer than ``history`` rows before their latest one, and how many they have."""
    if scoring.history == 0:
        return {}
    counts = _groups(combined, scoring.group).value_counts()
    scored_groups = set(_groups(combined[from_file], scoring.group))
    return {str(g): int(n) - 1 for g, n in counts.items() if g in scored_groups and n - 1 < scoring.history}


def ranked_list(frame: pd.DataFrame, scores: np.ndarray, scoring: ScoringSpec) -> pd.DataFrame:
    """Every row's key and score, highest score first (ties by key), with its decile."""
    key = list(scoring.key)
    ranked = frame[key].assign(**{scoring.score_column: np.asarray(scores, dtype=float)})
    ranked = ranked.sort_values([scoring.score_column, *key], ascending=[False, *[True] * len(key)],
                                kind="stable").reset_index(drop=True)
    # Deciles by rank rather than by score, so each holds a tenth of the rows even when scores tie.
    ranked[DECILE_COLUMN] = np.arange(len(ranked)) * 10 // max(len(ranked), 1) + 1
    return ranked


def latest_per_group(combined: pd.DataFrame, from_file: np.ndarray, scores: np.ndarray,
                     scoring: ScoringSpec) -> pd.DataFrame:
    """The score of each group's latest row in the file, with that row's key; one row per group."""
    scored = combined.assign(**{scoring.score_column: np.asarray(scores, dtype=float)})[from_file]
    order = _order_values(scored, scoring)
    latest = order.groupby(_groups(scored, scoring.group)).idxmax()
    result = scored.loc[latest.to_numpy(), [*scoring.key, scoring.score_column]]
    sort_by = [scoring.group] if scoring.group else list(scoring.key)
    return result.sort_values(sort_by, kind="stable").reset_index(drop=True)


# --- where predictions go -------------------------------------------------------------------

def default_output(project: Project, use_case: str, now: datetime) -> Path:
    """``predictions/<use case>-<UTC time>.csv``, with a counter when that name is taken."""
    folder = project.root / PREDICTIONS_DIR
    stem = f"{use_case}-{now.strftime('%Y%m%dT%H%M%SZ')}"
    path, counter = folder / f"{stem}.csv", 1
    while path.exists():
        counter += 1
        path = folder / f"{stem}-{counter}.csv"
    return path


def write_atomically(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` as CSV so that ``path`` is either absent, the old file, or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Named by hand rather than with mkstemp, whose owner-only mode the renamed file would keep.
    temporary = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with temporary.open("x", newline="") as stream:
            table.to_csv(stream, index=False)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
