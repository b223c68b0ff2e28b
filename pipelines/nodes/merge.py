"""Appending a batch to a dataset: exact duplicates dropped, everything else kept for validation."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Merge:
    merged: pd.DataFrame
    """The current rows, then the batch's new rows, in file order."""
    new_rows: pd.DataFrame
    duplicates_dropped: int


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    # Compare as text so that 1 and 1.0, or int64 and object columns, match as a person would.
    return frame.astype(str)


def merge_batch(current: pd.DataFrame | None, batch: pd.DataFrame) -> Merge:
    """Append ``batch`` to ``current``; rows identical to a row already present are dropped.

    Rows that share a key but differ are kept, so that the key-uniqueness
    expectation on the merged table rejects the conflict with examples.
    """
    if current is None or current.empty:
        current = batch.iloc[0:0]
    columns = list(current.columns) if len(current.columns) else list(batch.columns)
    ordered = batch[[c for c in columns if c in batch.columns]
                    + [c for c in batch.columns if c not in columns]]
    both = pd.concat([_comparable(current), _comparable(ordered)], ignore_index=True)
    repeated = both.duplicated(keep="first").to_numpy()[len(current):]
    new_rows = ordered.loc[~repeated]
    merged = pd.concat([current, new_rows], ignore_index=True)
    return Merge(merged=merged, new_rows=new_rows, duplicates_dropped=int(repeated.sum()))
