"""Drift of accepted batches against the champion's training data, kept with the model and the batch."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from models.drift import DriftReport, ReferenceProfile
from pipelines import registry, tracking
from pipelines.modeling import ModelingSpec, resolve_reference
from pipelines.retraining import retraining_spec
from pipelines.usecase import UseCase

REFERENCE_ARTIFACT = "drift_reference.json"


def monitored_frame(use_case: UseCase, spec: ModelingSpec, frame: pd.DataFrame) -> pd.DataFrame:
    """The columns drift is measured on, one row per row of ``frame``.

    The use case's ``drift_view`` transformer when it has one (stock compares returns and
    indicators, which need each ticker's history, rather than price levels); else the raw inputs
    without keys, labels and dates.
    """
    view_reference = retraining_spec(use_case).drift_view
    if view_reference:
        view = resolve_reference(view_reference, "retraining.drift_view")()
        values = np.asarray(view.fit_transform(frame))
        names = (list(view.get_feature_names_out()) if hasattr(view, "get_feature_names_out")
                 else [f"feature_{i}" for i in range(values.shape[1])])
        return pd.DataFrame(values, columns=names, index=frame.index)
    dropped = {*spec.non_inputs, *use_case.key, *use_case.date_columns}
    return frame.drop(columns=[c for c in frame.columns if c in dropped])


def reference_profile(use_case: UseCase, spec: ModelingSpec, frame: pd.DataFrame,
                      training_rows: np.ndarray) -> ReferenceProfile:
    # The view sees the whole frame so that history-based columns of the first rows are right.
    return ReferenceProfile.from_frame(monitored_frame(use_case, spec, frame).iloc[training_rows])


def batch_rows(use_case: UseCase, dataset: pd.DataFrame, batch: pd.DataFrame) -> np.ndarray:
    """Positions in ``dataset`` of the batch's rows, matched on the use case's key."""
    key = list(use_case.key)
    wanted = batch[key].astype(str).drop_duplicates()
    marked = dataset[key].astype(str).reset_index(drop=True).merge(
        wanted.assign(_in_batch=True), on=key, how="left")
    return np.flatnonzero(marked["_in_batch"].notna().to_numpy())


def champion_reference(client: Any, model_name: str) -> tuple[str | None, ReferenceProfile | None]:
    """(champion version, its training data's profile); Nones when there is no champion or profile."""
    import json
    import tempfile

    try:
        champion = registry.version_by_alias(client, model_name, registry.CHAMPION)
    except registry.RegistryError:
        return None, None
    if champion is None or not champion.run_id:
        return None, None
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = client.download_artifacts(champion.run_id, REFERENCE_ARTIFACT, folder)
            with open(path) as stream:
                return str(champion.version), ReferenceProfile.from_dict(json.load(stream))
    except Exception:  # noqa: BLE001 - a model logged without a profile cannot be compared
        return str(champion.version), None


def log_drift(client: Any, experiment_id: str, tags: dict[str, str], source: str, report: DriftReport,
              champion_version: str | None) -> str:
    """A run of role ``data-batch`` in the use case's experiment: PSI per column, the verdict."""
    run = client.create_run(experiment_id, run_name=f"batch {source}",
                            tags={**tags, tracking.TAG_ROLE: "data-batch", "source_file": source,
                                  "drift.verdict": "drifted" if report.drifted
                                  else ("not judged" if not report.judged else "no drift"),
                                  "drift.champion_version": champion_version or "none"})
    run_id = run.info.run_id
    metrics = {"drift_max_excess_psi": report.max_excess, "batch_rows": float(report.rows)}
    metrics.update({f"psi.{_metric_name(c.column)}": c.psi for c in report.columns})
    client.log_batch(run_id, metrics=[_metric(k, v) for k, v in metrics.items()])
    client.log_dict(run_id, report.to_dict(), "drift.json")
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def _metric_name(column: str) -> str:
    return re.sub(r"[^0-9A-Za-z_\-. /]", "_", column)


def _metric(key: str, value: float):
    import time

    from mlflow.entities import Metric

    return Metric(key, float(value), int(time.time() * 1000), 0)
