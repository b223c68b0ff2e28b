"""What drift is measured on: the columns a use case's batches are compared by, and the reference profile."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.drift import ReferenceProfile
from pipelines.config.references import resolve_reference
from pipelines.config.usecase import UseCase

REFERENCE_ARTIFACT = "drift_reference.json"


def monitored_frame(use_case: UseCase, frame: pd.DataFrame) -> pd.DataFrame:
    """The columns drift is measured on, one row per row of ``frame``.

    The use case's ``drift_view`` transformer when it has one (stock compares returns and
    indicators, which need each ticker's history, rather than price levels); else the raw inputs
    without keys, labels and dates.
    """
    view_reference = use_case.retraining.drift_view
    if view_reference:
        view = resolve_reference(view_reference)()
        values = np.asarray(view.fit_transform(frame))
        names = (list(view.get_feature_names_out()) if hasattr(view, "get_feature_names_out")
                 else [f"feature_{i}" for i in range(values.shape[1])])
        return pd.DataFrame(values, columns=names, index=frame.index)
    dropped = {*use_case.non_inputs, *use_case.key, *use_case.date_columns}
    return frame.drop(columns=[c for c in frame.columns if c in dropped])


def reference_profile(use_case: UseCase, frame: pd.DataFrame, training_rows: np.ndarray) -> ReferenceProfile:
    # The view sees the whole frame so that history-based columns of the first rows are right.
    return ReferenceProfile.from_frame(monitored_frame(use_case, frame).iloc[training_rows])


def batch_rows(use_case: UseCase, dataset: pd.DataFrame, batch: pd.DataFrame) -> np.ndarray:
    """Positions in ``dataset`` of the batch's rows, matched on the use case's key."""
    key = list(use_case.key)
    wanted = batch[key].astype(str).drop_duplicates()
    marked = dataset[key].astype(str).reset_index(drop=True).merge(
        wanted.assign(_in_batch=True), on=key, how="left")
    return np.flatnonzero(marked["_in_batch"].notna().to_numpy())
