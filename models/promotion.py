"""Whether a challenger takes over from the champion: pure policy, on figures from one shared holdout.

A point estimate on a few hundred holdout rows is noisy: a challenger one seed away from the champion
"wins" half the time. So the gate looks at intervals of the challenger's gain (how much better it
is on the primary metric, positive when better, whatever the metric's direction) and promotes only
when even the interval's lower end beats the best naive baseline and, by the margin, the champion.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.metrics import Metric
from models.uncertainty import Interval

DECISION_TAG = "promotion.decision"
INTENDED_TAG = "promotion.intended"
PENDING = "pending"
PROMOTED = "promoted"
KEPT = "kept champion"
INTERRUPTED = "not carried out"


@dataclass(frozen=True)
class Evidence:
    """Intervals of the challenger's gain on the primary metric, at ``confidence``."""

    confidence: float
    vs_baseline: Interval | None = None
    vs_champion: Interval | None = None
    error: str | None = None
    """Why the intervals could not be estimated (e.g. too few holdout rows of a class)."""


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
    evidence: Evidence | None = None

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
            **self._interval_tags(),
        }

    def _interval_tags(self) -> dict[str, str]:
        evidence = self.evidence
        if evidence is None:
            return {}
        tags = {"promotion.confidence": _fmt(evidence.confidence)}
        for name, interval in (("vs_baseline", evidence.vs_baseline), ("vs_champion", evidence.vs_champion)):
            tags[f"promotion.gain_{name}"] = interval.text() if interval else "none"
            if interval:
                tags[f"promotion.gain_{name}_low"] = _fmt(interval.low)
                tags[f"promotion.gain_{name}_high"] = _fmt(interval.high)
        if evidence.error:
            tags["promotion.interval_error"] = evidence.error[:500]
        return tags


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


def best_baseline(metric: Metric, baselines: dict[str, float]) -> str | None:
    """The baseline with the best finite holdout value, if any."""
    finite = {name: value for name, value in baselines.items() if value == value}
    if not finite:
        return None
    return (max if metric.greater_is_better else min)(finite, key=finite.get)


def decide(metric: Metric, margin: float, challenger: float, champion: float | None,
           champion_version: str | None, baselines: dict[str, float],
           champion_error: str | None = None, evidence: Evidence | None = None) -> Decision:
    """Promote only when the challenger surely beats the best naive baseline, and the champion by ``margin``.

    All figures are on the same holdout rows. With ``evidence``, "surely" means the lower end of the
    gain's interval (above 0 for the baseline, above ``margin`` for the champion); without it, the
    point values decide. An unscorable champion blocks an automatic promotion: a person decides then.
    """
    baseline_name = best_baseline(metric, baselines)
    baseline_value = baselines[baseline_name] if baseline_name else None

    def decision(promote: bool, reason: str) -> Decision:
        return Decision(promote, reason, metric.name, challenger, champion, champion_version,
                        baseline_value, baseline_name, margin, evidence)

    refusal = _refusal(metric, margin, challenger, champion, champion_version, baseline_name, baseline_value,
                       champion_error, evidence)
    if refusal:
        return decision(False, refusal)
    if champion is None:
        against = (f"beats the naive baseline {baseline_name} ({_fmt(baseline_value)})" if baseline_name
                   else "(no naive baseline to compare with)")
        return decision(True, f"first champion: holdout {metric.name} {challenger:.4f} {against}"
                              f"{_gain(evidence, 'vs_baseline')}")
    return decision(True, f"holdout {metric.name} {challenger:.4f} beats champion v{champion_version} "
                          f"({champion:.4f}) by more than {margin:g}{_gain(evidence, 'vs_champion')}")


def _refusal(metric: Metric, margin: float, challenger: float, champion: float | None,
             champion_version: str | None, baseline_name: str | None, baseline_value: float | None,
             champion_error: str | None, evidence: Evidence | None) -> str | None:
    """Why the challenger is not promoted, or None when it is."""
    if challenger != challenger:
        return f"the challenger's holdout {metric.name} is undefined"
    if baseline_value is not None and not metric.better(challenger, baseline_value):
        return (f"holdout {metric.name} {challenger:.4f} does not beat the naive baseline "
                f"{baseline_name} ({baseline_value:.4f})")
    if champion_error:
        return (f"the current champion v{champion_version} could not be scored on the holdout "
                f"({champion_error}); promote by hand if intended")
    if champion is not None and not metric.better(challenger, champion, margin):
        return (f"holdout {metric.name} {challenger:.4f} does not beat champion v{champion_version} "
                f"({champion:.4f}) by more than {margin:g}")
    if evidence is None or (baseline_name is None and champion is None):
        return None
    if evidence.error:
        return (f"holdout {metric.name} {challenger:.4f} looks better, but its uncertainty could not be "
                f"estimated ({evidence.error}); promote by hand if intended")
    against_baseline = evidence.vs_baseline
    if baseline_name and against_baseline and not against_baseline.beats(0.0):
        return (f"holdout {metric.name} {challenger:.4f} is not surely better than the naive baseline "
                f"{baseline_name} ({baseline_value:.4f}): gain {against_baseline.text()} includes 0")
    against_champion = evidence.vs_champion
    if champion is not None and against_champion and not against_champion.beats(margin):
        return (f"holdout {metric.name} {challenger:.4f} is not surely better than champion "
                f"v{champion_version} ({champion:.4f}) by more than {margin:g}: gain "
                f"{against_champion.text()}")
    return None


def _gain(evidence: Evidence | None, name: str) -> str:
    interval = getattr(evidence, name, None) if evidence else None
    return f"; gain {interval.text()}" if interval else ""
