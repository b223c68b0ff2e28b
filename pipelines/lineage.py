"""From a registered model version back to the run, the data version and the commit behind it."""

from __future__ import annotations

import subprocess

import yaml

from pipelines import registry, tracking
from pipelines.project import Project


def _committed_data_version(project: Project, commit: str) -> str | None:
    shown = subprocess.run(["git", "-C", str(project.root), "show", f"{commit}:data.dvc"],
                           capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        return None
    outs = (yaml.safe_load(shown.stdout) or {}).get("outs") or []
    return str(outs[0].get("md5")) if outs else None


def describe(project: Project, client, reference: str) -> str:
    version = registry.resolve(client, reference)
    tags = version.tags
    name = version.name
    lines = [f"model         {name} v{version.version}"
             + (f" (aliases: {', '.join(sorted(version.aliases))})" if version.aliases else "")]
    primary = tags.get("primary_metric")
    if primary:
        lines.append(f"scores        holdout {primary} {tags.get(f'holdout_{primary}', '?')}, "
                     f"cv {primary} {tags.get(f'cv_{primary}', '?')}")
    lines += [
        f"candidate     {tags.get(tracking.TAG_CANDIDATE, '?')} ({tags.get(tracking.TAG_FAMILY, '?')})",
        f"run           {version.run_id} (cycle run {tags.get('parent_run_id', '?')})",
        f"use case      {tags.get(tracking.TAG_USE_CASE, '?')}",
        f"data version  {tags.get(tracking.TAG_DATA_VERSION, '?')}",
        f"validation    {tags.get(tracking.TAG_VALIDATION, '?')}",
        f"git commit    {tags.get(tracking.TAG_GIT_COMMIT, '?')}"
        + (" (with uncommitted changes)" if tags.get(tracking.TAG_GIT_DIRTY) == "true" else ""),
        f"prefect run   {tags.get(tracking.TAG_FLOW_RUN, '?')}",
    ]
    if "promotion.decision" in tags:
        lines.append(f"decision      {tags['promotion.decision']}: {tags.get('promotion.reason', '')}")
    if "champion.since" in tags:
        lines.append(f"champion      since {tags['champion.since']} by {tags.get('champion.by', '?')}: "
                     f"{tags.get('champion.reason', '')}")
    data_version = tags.get(tracking.TAG_DATA_VERSION)
    commit = tags.get(tracking.TAG_GIT_COMMIT)
    if data_version:
        lines.append("restore data  mlops data checkout " + data_version)
        if commit and _committed_data_version(project, commit) == data_version:
            lines.append(f"         or   git checkout {commit} -- data.dvc && dvc pull data.dvc")
    lines.append(f"load model    mlflow.sklearn.load_model('models:/{name}/{version.version}')")
    return "\n".join(lines)
