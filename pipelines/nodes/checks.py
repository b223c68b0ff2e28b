"""Checks of a definition that build things: every candidate once, its features on a few rows."""

from __future__ import annotations

import pandas as pd

from pipelines.config.errors import UseCaseError
from pipelines.config.usecase import UseCase
from pipelines.nodes.estimators import baseline_factory, candidate_factory, check_data

SAMPLE_ROWS = 200


def build_problems(use_case: UseCase, frame: pd.DataFrame | None) -> list[str]:
    """Each candidate and baseline built (and its features fitted on a few rows when data is at hand)."""
    from sklearn.base import clone

    sample = frame.head(SAMPLE_ROWS) if frame is not None else None
    problems = []
    makers = {f"candidates.{name}": candidate_factory(use_case, candidate, 1.0)
              for name, candidate in use_case.candidates.items()}
    makers.update({f"baselines.{name}": baseline_factory(use_case, name) for name in use_case.baselines})
    for where, make in makers.items():
        try:
            pipeline = clone(make())
            if sample is not None and "features" in pipeline.named_steps:
                pipeline.named_steps["features"].fit_transform(sample)
        except Exception as exc:  # noqa: BLE001 - every problem is reported, none stops the check
            problems.append(f"{use_case.file_name}: {where}: cannot be built ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})")
    return problems


def data_problems(use_case: UseCase, frame: pd.DataFrame) -> list[str]:
    """What the definition asks of its data: the target, and enough rows for the split."""
    try:
        check_data(use_case, frame)
    except UseCaseError as exc:
        return exc.problems
    return []
