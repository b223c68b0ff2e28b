"""The git adapter: which commit the project is at, and a file as a commit holds it."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from pipelines.config.project import Project


@dataclass(frozen=True)
class GitState:
    commit: str
    dirty: bool


def _git(project: Project, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(project.root), *args], capture_output=True, text=True,
                          check=False)


def state(project: Project) -> GitState:
    """The commit the project is at, and whether tracked files differ from it."""
    head = _git(project, "rev-parse", "HEAD")
    if head.returncode != 0:
        return GitState("unknown", True)
    status = _git(project, "status", "--porcelain", "--untracked-files=no")
    return GitState(head.stdout.strip(), bool(status.stdout.strip()))


def file_at(project: Project, commit: str, path: str) -> str | None:
    """The text of ``path`` at ``commit``, or None when the commit or the file is not there."""
    shown = _git(project, "show", f"{commit}:{path}")
    return shown.stdout if shown.returncode == 0 else None
