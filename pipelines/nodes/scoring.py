"""What batch predictions look like for a use case: the tables ``mlops predict`` writes.

Two shapes of output cover the shipped use cases, and any new one picks a shape in its definition's
``scoring:`` section:

- ``ranked_list``: every row of the file, best first, with a decile (1 = the top tenth);
- ``latest_per_group``: one row per group (e.g. per ticker), the group's latest row in the file,
  scored with the group's earlier rows from the dataset prepended so that lagged and rolling
  features see a full history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.config.project import Project
from pipelines.config.usecase import RANKED_LIST, UseCase

DECILE_COLUMN = "decile"
PREDICTIONS_DIR = "predictions"


@dataclass(frozen=True)
class ScoringLayout:
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


def layout(use_case: UseCase) -> ScoringLayout:
    """The use case's ``scoring:`` section with every default and derived column filled in."""
    order = use_case.order
    common = dict(use_case=use_case.name, output=use_case.scoring.output, key=use_case.key,
                  score_column=use_case.scoring.score, label_columns=use_case.label_columns)
    if use_case.scoring.output == RANKED_LIST or order is None:
        return ScoringLayout(**common)
    return ScoringLayout(**common, group=use_case.scoring_group, order_column=order.column,
                         order_format=use_case.date_columns.get(order.column),
                         history=use_case.scoring_history)


# --- the tables -----------------------------------------------------------------------------

def _groups(frame: pd.DataFrame, group: str | None) -> pd.Series:
    if group is None:
        return pd.Series("", index=frame.index)
    return frame[group].astype(str)


def _order_values(frame: pd.DataFrame, scoring: ScoringLayout) -> pd.Series:
    column = frame[scoring.order_column]
    if scoring.order_format:
        return pd.to_datetime(column, format=scoring.order_format)
    return column


def with_history(frame: pd.DataFrame, dataset: pd.DataFrame | None,
                 scoring: ScoringLayout) -> tuple[pd.DataFrame, np.ndarray]:
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
                       scoring: ScoringLayout) -> dict[str, int]:
    """Groups with fewer than ``history`` rows before their latest one, and how many they have."""
    if scoring.history == 0:
        return {}
    counts = _groups(combined, scoring.group).value_counts()
    scored_groups = set(_groups(combined[from_file], scoring.group))
    return {str(g): int(n) - 1 for g, n in counts.items() if g in scored_groups and n - 1 < scoring.history}


def ranked_list(frame: pd.DataFrame, scores: np.ndarray, scoring: ScoringLayout) -> pd.DataFrame:
    """Every row's key and score, highest score first (ties by key), with its decile."""
    key = list(scoring.key)
    ranked = frame[key].assign(**{scoring.score_column: np.asarray(scores, dtype=float)})
    ranked = ranked.sort_values([scoring.score_column, *key], ascending=[False, *[True] * len(key)],
                                kind="stable").reset_index(drop=True)
    # Deciles by rank rather than by score, so each holds a tenth of the rows even when scores tie.
    ranked[DECILE_COLUMN] = np.arange(len(ranked)) * 10 // max(len(ranked), 1) + 1
    return ranked


def latest_per_group(combined: pd.DataFrame, from_file: np.ndarray, scores: np.ndarray,
                     scoring: ScoringLayout) -> pd.DataFrame:
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
