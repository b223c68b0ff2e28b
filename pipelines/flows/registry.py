"""The registry as `mlops models`, `promote`, `rollback`, `lineage` and `ui` use it."""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass

import yaml

from pipelines.adapters import git
from pipelines.adapters.registry import CHAMPION, Registry
from pipelines.adapters.tracker import (
    ARTIFACTS_DIR,
    TAG_CANDIDATE,
    TAG_DATA_VERSION,
    TAG_FAMILY,
    TAG_FLOW_RUN,
    TAG_GIT_COMMIT,
    TAG_GIT_DIRTY,
    TAG_USE_CASE,
    TAG_VALIDATION,
    TRAINING_VIEW,
    is_local_store,
    tracking_uri,
)
from pipelines.config.project import Project


@dataclass(frozen=True)
class VersionRow:
    version: str
    aliases: str
    candidate: str
    holdout: str
    data_version: str
    created: str


def versions(project: Project, model: str | None, limit: int) -> dict[str, tuple[int, list[VersionRow]]]:
    """Per registered model: how many versions it has, and its newest ``limit`` as rows."""
    registry = Registry(project)
    listed = {}
    for name in [model] if model else registry.names():
        aliases: dict[str, list[str]] = {}
        for alias, number in (registry.registered_model(name).aliases or {}).items():
            aliases.setdefault(str(number), []).append(alias)
        found = registry.versions(name)
        listed[name] = (len(found), [_row(v, aliases) for v in found[:limit]])
    return listed


def _row(version: object, aliases: dict[str, list[str]]) -> VersionRow:
    tags = version.tags
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(version.creation_timestamp / 1000))
    return VersionRow(f"v{version.version}", ",".join(sorted(aliases.get(str(version.version), []))),
                      tags.get(TAG_CANDIDATE, ""), holdout_text(tags), tags.get(TAG_DATA_VERSION, "")[:12],
                      created)


def holdout_text(tags: dict[str, str]) -> str:
    """``roc_auc 0.7301 [0.6802, 0.7790]``: the version's holdout score with its interval, when recorded."""
    primary = tags.get("primary_metric", "")
    value = tags.get(f"holdout_{primary}", "")
    with contextlib.suppress(ValueError):
        value = f"{float(value):.4f}"
    text = f"{primary} {value}".strip()
    low, high = tags.get(f"holdout_{primary}_low"), tags.get(f"holdout_{primary}_high")
    if low and high and "nan" not in (low, high):
        text += f" [{float(low):.4f}, {float(high):.4f}]"
    return text


def promote(project: Project, model: str, number: str, reason: str, actor: str) -> str:
    """Make ``number`` the champion; says what changed."""
    registry = Registry(project)
    previous = registry.version_by_alias(model, CHAMPION)
    if previous is not None and str(previous.version) == number:
        registry.version(model, number)
        return f"{model}: v{number} is already the champion; nothing changed"
    registry.set_champion(model, number, reason, actor)
    was = f" (was v{previous.version})" if previous else ""
    return f"{model}: champion is now v{number}{was}"


def rollback(project: Project, model: str, reason: str, actor: str) -> str:
    current, target = Registry(project).rollback(model, reason, actor)
    return f"{model}: champion rolled back from v{current} to v{target}"


def lineage(project: Project, reference: str) -> str:
    """From a registered model version back to the run, the data version and the commit behind it."""
    version = Registry(project).resolve(reference)
    tags = version.tags
    aliases = f" (aliases: {', '.join(sorted(version.aliases))})" if version.aliases else ""
    lines = [f"model         {version.name} v{version.version}{aliases}"]
    primary = tags.get("primary_metric")
    if primary:
        confidence = tags.get("holdout_confidence")
        of = f" ({float(confidence):.0%} interval)" if confidence and "[" in holdout_text(tags) else ""
        lines.append(f"scores        holdout {holdout_text(tags)}{of}, "
                     f"cv {primary} {tags.get(f'cv_{primary}', '?')}")
    dirty = " (with uncommitted changes)" if tags.get(TAG_GIT_DIRTY) == "true" else ""
    lines += [
        f"candidate     {tags.get(TAG_CANDIDATE, '?')} ({tags.get(TAG_FAMILY, '?')})",
        f"run           {version.run_id} (cycle run {tags.get('parent_run_id', '?')})",
        f"use case      {tags.get(TAG_USE_CASE, '?')}",
        f"data version  {tags.get(TAG_DATA_VERSION, '?')}",
        f"validation    {tags.get(TAG_VALIDATION, '?')}",
        f"git commit    {tags.get(TAG_GIT_COMMIT, '?')}{dirty}",
        f"prefect run   {tags.get(TAG_FLOW_RUN, '?')}",
    ]
    lines += _decisions(tags) + _restore(project, tags)
    lines.append(f"load model    mlflow.sklearn.load_model('models:/{version.name}/{version.version}')")
    return "\n".join(lines)


def _decisions(tags: dict[str, str]) -> list[str]:
    lines = []
    if "promotion.decision" in tags:
        lines.append(f"decision      {tags['promotion.decision']}: {tags.get('promotion.reason', '')}")
        for against in ("baseline", "champion"):
            gain = tags.get(f"promotion.gain_vs_{against}")
            if gain and gain != "none":
                lines.append(f"gain          vs {against}: {gain}")
    if "champion.since" in tags:
        lines.append(f"champion      since {tags['champion.since']} by {tags.get('champion.by', '?')}: "
                     f"{tags.get('champion.reason', '')}")
    return lines


def _restore(project: Project, tags: dict[str, str]) -> list[str]:
    data_version, commit = tags.get(TAG_DATA_VERSION), tags.get(TAG_GIT_COMMIT)
    if not data_version:
        return []
    lines = ["restore data  mlops data checkout " + data_version]
    if commit and _committed_data_version(project, commit) == data_version:
        lines.append(f"         or   git checkout {commit} -- data.dvc && dvc pull data.dvc")
    return lines


def _committed_data_version(project: Project, commit: str) -> str | None:
    text = git.file_at(project, commit, "data.dvc")
    outs = (yaml.safe_load(text) or {}).get("outs") or [] if text else []
    return str(outs[0].get("md5")) if outs else None


def ui_command(project: Project, host: str, port: int) -> tuple[str, list[str] | None]:
    """What `mlops ui` says, and the MLflow UI command for a local store (None for a server)."""
    uri = tracking_uri(project)
    if not is_local_store(uri):
        return f"runs are tracked on {uri}; open {uri.rstrip('/')}/#/experiments?{TRAINING_VIEW}", None
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--default-artifact-root", (project.root / ARTIFACTS_DIR).as_uri(),
               "--host", host, "--port", str(port)]
    return f"MLflow UI on http://{host}:{port} for {uri} (Ctrl-C to stop)", command
