"""Whether a challenger takes over from the champion: pure policy, on figures from one shared holdout."""

from __future__ import annotations

from dataclasses import dataclass

from models.metrics import Metric

DECISION_TAG = "promotion.decision"
INTENDED_TAG = "promotion.intended"
PENDING = "pending"
PROMOTED = "promoted"
KEPT = "kept champion"
INTERRUPTED = "not carried out"


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None
    champion_version: str | None
    baseline: float | None
    baseline_name: str | None
    margin: float

    @property
    def outcome(self) -> str:
        return PROMOTED if self.promote else KEPT

    def pending_tags(self) -> dict[str, str]:
        """The decision as recorded before it is carried out: ``pending`` until ``champion`` moved."""
        return {**self.tags(), DECISION_TAG: PENDING, INTENDED_TAG: self.outcome}

    def tags(self) -> dict[str, str]:
        return {
            DECISION_TAG: self.outcome,
            "promotion.reason": self.reason,
            "promotion.metric": self.metric,
            "promotion.challenger_value": _fmt(self.challenger),
            "promotion.champion_value": _fmt(self.champion),
            "promotion.champion_version": self.champion_version or "none",
            "promotion.baseline_value": _fmt(self.baseline),
            "promotion.baseline": self.baseline_name or "none",
            "promotion.margin": _fmt(self.margin),
        }


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


def decide(metric: Metric, margin: float, challenger: float, champion: float | None,
           champion_version: str | None, baselines: dict[str, float],
           champion_error: str | None = None) -> Decision:
    """Promote only when the challenger beats the best naive baseline and the champion by ``margin``.

    All figures are on the same holdout rows. An unscorable champion blocks an automatic promotion:
    a person decides then.
    """
    finite = {name: value for name, value in baselines.items() if value == value}
    best_baseline = None
    if finite:
        best_baseline = (max if metric.greater_is_better else min)(finite, key=finite.get)
    baseline_value = finite.get(best_baseline) if best_baseline else None

    def decision(promote: bool, reason: str) -> Decision:
        return Decision(promote, reason, metric.name, challenger, champion, champion_version,
                        baseline_value, best_baseline, margin)

    if challenger != challenger:
        return decision(False, f"the challenger's holdout {metric.name} is undefined")
    if baseline_value is not None and not metric.better(challenger, baseline_value):
        return decision(False, f"holdout {metric.name} {challenger:.4f} does not beat the naive baseline "
                               f"{best_baseline} ({baseline_value:.4f})")
    if champion_error:
        return decision(False, f"the current champion v{champion_version} could not be scored on the "
                               f"holdout ({champion_error}); promote by hand if intended")
    if champion is None and best_baseline is None:
        return decision(True, f"first champion: holdout {metric.name} {challenger:.4f} (no naive baseline "
                              "to compare with)")
    if champion is None:
        return decision(True, f"first champion: holdout {metric.name} {challenger:.4f} beats the naive "
                              f"baseline {best_baseline} ({_fmt(baseline_value)})")
    if metric.better(challenger, champion, margin):
        return decision(True, f"holdout {metric.name} {challenger:.4f} beats champion v{champion_version} "
                              f"({champion:.4f}) by more than {margin:g}")
    return decision(False, f"holdout {metric.name} {challenger:.4f} does not beat champion "
                           f"v{champion_version} ({champion:.4f}) by more than {margin:g}")
