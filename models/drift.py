"""How far a batch of model inputs moved from the training data: population stability per column.

The reference is a compact profile of the training rows (bin edges and shares), so it can be
stored with a model and compared with any later batch without the training data at hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Shares are floored before the logarithm: an empty bin would otherwise make the index infinite.
FLOOR = 1e-4


@dataclass(frozen=True)
class ColumnProfile:
    name: str
    kind: str
    """``numeric``: quantile bins of the reference; ``categorical``: its values."""
    shares: list[float]
    """Reference share of each bucket; the last bucket holds missing values."""
    edges: list[float] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)

    def buckets(self, values: pd.Series) -> np.ndarray:
        """Bucket index of each value: bins or categories first, then (categorical) other, then missing."""
        missing = values.isna().to_numpy()
        if self.kind == "numeric":
            numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            missing = missing | np.isnan(numbers)
            index = np.searchsorted(np.asarray(self.edges, dtype=float), numbers, side="right")
        else:
            lookup = {category: i for i, category in enumerate(self.categories)}
            other = len(self.categories)
            index = np.array([lookup.get(str(v), other) for v in values.to_numpy()], dtype=int)
        index[missing] = len(self.shares) - 1
        return index

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "shares": self.shares, "edges": self.edges,
                "categories": self.categories}


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    psi: float
    noise: float
    """The index that sampling alone gives a batch of this size, on average."""

    @property
    def excess(self) -> float:
        return max(0.0, self.psi - self.noise)


@dataclass(frozen=True)
class DriftReport:
    rows: int
    threshold: float
    columns: list[ColumnDrift]
    judged: bool
    """False when the batch is too small to tell drift from chance."""

    @property
    def worst(self) -> ColumnDrift | None:
        return max(self.columns, key=lambda c: c.excess, default=None)

    @property
    def max_excess(self) -> float:
        return self.worst.excess if self.worst else 0.0

    @property
    def drifted(self) -> bool:
        return self.judged and self.max_excess > self.threshold

    def summary(self) -> str:
        if not self.columns:
            return "drift: no column to compare"
        ranked = sorted(self.columns, key=lambda c: c.excess, reverse=True)[:3]
        top = ", ".join(f"{c.column} {c.psi:.3f}" for c in ranked)
        if not self.judged:
            return f"drift not judged: {self.rows} rows are too few (largest PSI: {top})"
        verdict = "DRIFTED" if self.drifted else "no drift"
        return (f"{verdict}: largest PSI above sampling noise {self.max_excess:.3f} "
                f"(threshold {self.threshold}); largest PSI: {top}")

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "threshold": self.threshold, "judged": self.judged,
                "drifted": self.drifted, "max_excess_psi": self.max_excess,
                "columns": {c.column: {"psi": c.psi, "noise": c.noise} for c in self.columns}}


@dataclass(frozen=True)
class ReferenceProfile:
    rows: int
    columns: list[ColumnProfile]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, bins: int = 10, max_categories: int = 50) -> ReferenceProfile:
        """Profile every column: numbers with more than ``bins`` distinct values get quantile bins,
        others (codes, levels, text) are categories, the ``max_categories`` most frequent kept."""
        profiles = []
        for name in frame.columns:
            values = frame[name]
            numbers = pd.to_numeric(values, errors="coerce")
            numeric = values.dtype != object and numbers.nunique() > bins
            if numeric:
                present = numbers.dropna().to_numpy(dtype=float)
                edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])) if len(present) \
                    else np.array([])
                profile = ColumnProfile(str(name), "numeric", [], edges=[float(e) for e in edges])
            else:
                counts = values.dropna().astype(str).value_counts()
                profile = ColumnProfile(str(name), "categorical", [],
                                        categories=[str(c) for c in counts.index[:max_categories]])
            n_buckets = (len(profile.edges) + 1 if numeric else len(profile.categories) + 1) + 1
            shares = np.bincount(profile.buckets(values), minlength=n_buckets) / max(len(values), 1)
            profiles.append(ColumnProfile(profile.name, profile.kind, [float(s) for s in shares],
                                          profile.edges, profile.categories))
        return cls(len(frame), profiles)

    def compare(self, batch: pd.DataFrame, threshold: float, min_rows: int = 50) -> DriftReport:
        """Population stability index of each profiled column present in ``batch``."""
        results = []
        for profile in self.columns:
            if profile.name not in batch.columns:
                continue
            expected = np.asarray(profile.shares)
            actual = np.bincount(profile.buckets(batch[profile.name]), minlength=len(expected)) \
                / max(len(batch), 1)
            results.append(ColumnDrift(profile.name, population_stability(expected, actual),
                                       _sampling_noise(expected, len(batch), self.rows)))
        return DriftReport(len(batch), threshold, results, judged=len(batch) >= min_rows)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> ReferenceProfile:
        return cls(int(raw["rows"]), [ColumnProfile(**c) for c in raw["columns"]])


def population_stability(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI = sum over buckets of (actual - expected) * ln(actual / expected)."""
    e = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    a = np.maximum(np.asarray(actual, dtype=float), FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _sampling_noise(expected: np.ndarray, batch_rows: int, reference_rows: int) -> float:
    """Expected PSI between two samples of one population: about (buckets - 1) * (1/n + 1/m).

    PSI is close to a chi-square statistic divided by the sample size, whose mean is the degrees
    of freedom; only buckets the reference actually uses count.
    """
    used = int(np.sum(np.asarray(expected) > 0))
    if used < 2 or batch_rows == 0:
        return 0.0
    return (used - 1) * (1 / batch_rows + 1 / max(reference_rows, 1))


