"""The MLflow model registry as the product uses it: aliases, promotion decisions, champion history.

``champion`` is the version that serves; ``challenger`` is the newest candidate. Every move of
``champion`` (automatic or by hand) is pushed on a history kept as a registered-model tag, which is
what ``rollback`` walks back through, and is explained on the version itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipelines.errors import MlopsError

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_TAG = "champion_history"
EVENTS_TAG = "champion_events"
# Registered-model tags have a length limit; old events beyond this are dropped, versions are not.
_MAX_EVENTS = 30


class RegistryError(MlopsError):
    """A model, version or alias the command needs does not exist, or a move is not allowed."""


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

    def tags(self) -> dict[str, str]:
        return {
            "promotion.decision": "promoted" if self.promote else "kept champion",
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


def decide(metric, margin: float, challenger: float, champion: float | None, champion_version: str | None,
           baselines: dict[str, float], champion_error: str | None = None) -> Decision:
    """Promote only when the challenger beats the best naive baseline and the champion by ``margin``.

    ``metric`` is a :class:`models.metrics.Metric`; all figures are on the same holdout rows.
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
    if champion is None:
        return decision(True, f"first champion: holdout {metric.name} {challenger:.4f} beats the naive "
                              f"baseline {best_baseline} ({_fmt(baseline_value)})")
    if metric.better(challenger, champion, margin):
        return decision(True, f"holdout {metric.name} {challenger:.4f} beats champion v{champion_version} "
                              f"({champion:.4f}) by more than {margin:g}")
    return decision(False, f"holdout {metric.name} {challenger:.4f} does not beat champion "
                           f"v{champion_version} ({champion:.4f}) by more than {margin:g}")


# --- reading --------------------------------------------------------------------------------

def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def registered_model(client, name: str):
    from mlflow.exceptions import MlflowException

    try:
        return client.get_registered_model(name)
    except MlflowException:
        known = ", ".join(sorted(m.name for m in client.search_registered_models())) or "none yet"
        raise RegistryError(f"no registered model '{name}' (registered: {known})") from None


def version_by_alias(client, name: str, alias: str):
    from mlflow.exceptions import MlflowException

    registered_model(client, name)
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def get_version(client, name: str, version: str):
    from mlflow.exceptions import MlflowException

    registered_model(client, name)
    try:
        return client.get_model_version(name, str(version))
    except MlflowException:
        raise RegistryError(f"model '{name}' has no version {version}") from None


def history(client, name: str) -> list[str]:
    """Champion versions, oldest first; the last one is the current champion."""
    raw = registered_model(client, name).tags.get(HISTORY_TAG, "")
    return [v for v in raw.split(",") if v]


def events(client, name: str) -> list[dict[str, Any]]:
    raw = registered_model(client, name).tags.get(EVENTS_TAG, "[]")
    try:
        return list(json.loads(raw))
    except json.JSONDecodeError:
        return []


def parse_reference(reference: str) -> tuple[str, str]:
    """``MODEL@ALIAS`` or ``MODEL/VERSION`` (or ``MODEL`` for its champion) to a name and a selector."""
    if "@" in reference:
        name, _, alias = reference.partition("@")
        return name, f"@{alias}"
    if "/" in reference:
        name, _, version = reference.partition("/")
        return name, version
    return reference, f"@{CHAMPION}"


def resolve(client, reference: str):
    name, selector = parse_reference(reference)
    if selector.startswith("@"):
        found = version_by_alias(client, name, selector[1:])
        if found is None:
            raise RegistryError(f"model '{name}' has no version with alias '{selector[1:]}'")
        return found
    return get_version(client, name, selector)


# --- writing --------------------------------------------------------------------------------

def register(client, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str):
    """A new version of ``name`` (created on first use) from a logged model, tagged and aliased challenger."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=f"Champion/challenger models of use case "
                                                         f"'{tags.get('use_case', name)}'.")
    version = client.create_model_version(name, model_uri, run_id=run_id, tags=tags, description=description)
    client.set_registered_model_alias(name, CHALLENGER, str(version.version))
    return version


def _record_event(client, name: str, event: dict[str, Any]) -> None:
    logged = [*events(client, name), event][-_MAX_EVENTS:]
    client.set_registered_model_tag(name, EVENTS_TAG, json.dumps(logged))


def set_champion(client, name: str, version: str, reason: str, actor: str) -> None:
    """Move ``champion`` to ``version`` and push it on the history."""
    get_version(client, name, version)
    previous = version_by_alias(client, name, CHAMPION)
    stack = history(client, name)
    if previous is not None and (not stack or stack[-1] != str(previous.version)):
        # The alias was moved outside this tool (e.g. in the MLflow UI): keep the history honest.
        stack.append(str(previous.version))
    stack.append(str(version))
    when = _now()
    client.set_registered_model_alias(name, CHAMPION, str(version))
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(stack))
    client.set_model_version_tag(name, str(version), "champion.since", when)
    client.set_model_version_tag(name, str(version), "champion.reason", reason)
    client.set_model_version_tag(name, str(version), "champion.by", actor)
    if previous is not None and str(previous.version) != str(version):
        client.set_model_version_tag(name, str(previous.version), "champion.until", when)
    _record_event(client, name, {"time": when, "action": "promote", "version": str(version),
                                 "previous": str(previous.version) if previous else None,
                                 "by": actor, "reason": reason})


def rollback(client, name: str, reason: str, actor: str) -> tuple[str, str]:
    """Give ``champion`` back to the champion before the current one; returns (from, to) versions."""
    current = version_by_alias(client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"model '{name}' has no champion to roll back")
    stack = history(client, name)
    while stack and stack[-1] == str(current.version):
        stack.pop()
    if not stack:
        raise RegistryError(f"model '{name}' has no earlier champion than v{str(current.version)}")
    target = stack[-1]
    when = _now()
    client.set_registered_model_alias(name, CHAMPION, target)
    client.set_registered_model_tag(name, HISTORY_TAG, ",".join(stack))
    client.set_model_version_tag(name, str(current.version), "champion.until", when)
    client.set_model_version_tag(name, str(current.version), "champion.rolled_back", f"{when}: {reason}")
    client.set_model_version_tag(name, target, "champion.since", when)
    client.set_model_version_tag(name, target, "champion.reason",
                                 f"rollback from v{str(current.version)}: {reason}")
    client.set_model_version_tag(name, target, "champion.by", actor)
    _record_event(client, name, {"time": when, "action": "rollback", "version": target,
                                 "previous": str(current.version), "by": actor, "reason": reason})
    return str(current.version), target
