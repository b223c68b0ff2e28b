"""The DVC adapter: data versions recorded in ``data.dvc``, pushed to and pulled from remotes.

A data version is the md5 DVC gives the ``data/`` folder (``outs[0].md5`` of ``data.dvc``).
Each version's ledger entry (time, use cases changed, rows, source file) is kept in the
``meta`` section of ``data.dvc``, which DVC preserves and git versions with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from pipelines.config.errors import VersioningError
from pipelines.config.project import Project


@dataclass(frozen=True)
class VersionRecord:
    version: str
    time: str
    use_cases: list[str]
    rows: dict[str, int]
    source: str

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> VersionRecord:
        return cls(
            version=str(raw["version"]),
            time=str(raw.get("time", "")),
            use_cases=list(raw.get("use_cases", [])),
            rows={str(k): int(v) for k, v in (raw.get("rows") or {}).items()},
            source=str(raw.get("source", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "time": self.time, "use_cases": self.use_cases,
                "rows": self.rows, "source": self.source}


def _dvc_env() -> dict[str, str]:
    return os.environ | {"DVC_NO_ANALYTICS": "true"}


class DataVersions:
    """Versions of the project's ``data/`` folder."""

    def __init__(self, project: Project) -> None:
        self.project = project

    def _dvc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "dvc", *args],
            cwd=self.project.root, env=_dvc_env(), capture_output=True, text=True, check=False,
        )

    def _dvc_or_fail(self, *args: str) -> str:
        done = self._dvc(*args)
        if done.returncode != 0:
            raise VersioningError(f"dvc {' '.join(args)} failed: {_last_line(done)}")
        return done.stdout

    # --- reading ------------------------------------------------------------------------

    def _pointer(self) -> dict[str, Any]:
        try:
            return yaml.safe_load(self.project.dvc_file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise VersioningError(f"{self.project.dvc_file} is not valid YAML: {exc}") from exc

    def current(self) -> str | None:
        """The data version that ``data.dvc`` names, or None before the first ``dvc add``."""
        outs = self._pointer().get("outs") or []
        return str(outs[0]["md5"]) if outs else None

    def history(self) -> list[VersionRecord]:
        meta = self._pointer().get("meta") or {}
        return [VersionRecord.from_dict(raw) for raw in meta.get("versions", [])]

    def is_materialised(self) -> bool:
        """True when ``data/`` holds files; ``pull`` restores it when it does not."""
        data = self.project.data_dir
        return data.is_dir() and any(p.is_file() for p in data.iterdir())

    def is_clean(self) -> bool:
        done = self._dvc("status", "--json", "data.dvc")
        return done.returncode == 0 and done.stdout.strip() in ("{}", "")

    def remotes(self) -> list[str]:
        """Configured remotes, the default first."""
        names = [line.split()[0] for line in self._dvc_or_fail("remote", "list").splitlines()
                 if line.strip()]
        default = self._dvc("remote", "default").stdout.strip()
        return sorted(names, key=lambda name: name != default)

    # --- writing ------------------------------------------------------------------------

    def pull(self) -> str:
        """Restore ``data/`` to the version ``data.dvc`` names, from the first remote that has it."""
        version = self.current()
        if version is None:
            raise VersioningError(f"{self.project.dvc_file} names no data version")
        reasons = []
        for remote in self.remotes():
            done = self._dvc("pull", "--remote", remote, "data.dvc")
            if done.returncode == 0:
                return version
            reasons.append(f"{remote}: {_last_line(done)}")
        raise VersioningError(f"data version {version} is on no remote ({'; '.join(reasons)})")

    def checkout(self, version: str) -> str:
        """Point ``data.dvc`` at an earlier ``version`` and restore it; nothing changes if that fails."""
        known = {record.version for record in self.history()}
        matches = sorted(v for v in known | {self.current() or ""} if v and v.startswith(version))
        if len(matches) > 1:
            raise VersioningError(f"data version prefix {version} is ambiguous: {', '.join(matches)}")
        full = matches[0] if matches else version
        saved = self.project.dvc_file.read_bytes()
        pointer = self._pointer()
        outs = pointer.get("outs") or [{"path": "data"}]
        # size and nfiles describe the old version; DVC recomputes them from the md5's manifest.
        outs[0] = {"md5": full, "path": outs[0].get("path", "data"), "hash": "md5"}
        pointer["outs"] = outs
        self.project.dvc_file.write_text(yaml.safe_dump(pointer, sort_keys=False))
        try:
            self.pull()
            self._dvc_or_fail("checkout", "--force", "data.dvc")
        except BaseException:
            self.project.dvc_file.write_bytes(saved)
            raise
        return full

    def record(self, use_cases: list[str], rows: dict[str, int], source: str) -> VersionRecord:
        """``dvc add`` the data folder, log the version in ``data.dvc``, push it to the default remote."""
        self._dvc_or_fail("add", "data")
        version = self.current()
        assert version is not None
        entry = VersionRecord(
            version=version,
            time=datetime.now(UTC).isoformat(timespec="seconds"),
            use_cases=use_cases,
            rows=rows,
            source=source,
        )
        self._append_to_ledger(entry)
        self._dvc_or_fail("push", "data.dvc")
        return entry

    def _append_to_ledger(self, entry: VersionRecord) -> None:
        pointer = self._pointer()
        meta = pointer.setdefault("meta", {}) or {}
        pointer["meta"] = meta
        meta.setdefault("versions", []).append(entry.to_dict())
        self.project.dvc_file.write_text(yaml.safe_dump(pointer, sort_keys=False))


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    useful = [line for line in lines if line.startswith("ERROR")] or lines
    return useful[-1].removeprefix("ERROR: ") if useful else f"exit code {done.returncode}"
