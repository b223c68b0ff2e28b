"""The DVC adapter: data versions recorded in ``data.dvc``, pushed to and pulled from remotes.

A data version is the md5 DVC gives the ``data/`` folder (``outs[0].md5`` of ``data.dvc``).
Each version's ledger entry (time, use cases changed, rows, source file) is kept in the
``meta`` section of ``data.dvc``, which DVC preserves and git versions with it.

A new version is made crash-safely: an intent record comes first, then the new dataset files (each
renamed over the old one), ``dvc add``, the ledger entry, ``dvc push``, and last the record is
cleared. A command killed anywhere in between leaves the record; ``recover`` then undoes the change
if ``dvc add`` had not completed, and completes it (ledger entry, push) if it had.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from pipelines.adapters.intent import STAGES, DataIntent, IntentLog, Writer, replace_file
from pipelines.config import failpoints
from pipelines.config.errors import VersioningError
from pipelines.config.project import Project
from pipelines.config.settings import Settings


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


ENV_REMOTE = "env"
"""The remote MLOPS_DVC_REMOTE names, kept in the clone's git-ignored .dvc/config.local."""


class DataVersions:
    """Versions of the project's ``data/`` folder."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._remote_configured = False

    def _dvc(self, *args: str) -> subprocess.CompletedProcess[str]:
        if not self._remote_configured:
            self._remote_configured = True
            self._configure_env_remote()
        return subprocess.run(
            [sys.executable, "-m", "dvc", *args],
            cwd=self.project.root, env=_dvc_env(), capture_output=True, text=True, check=False,
        )

    def _dvc_or_fail(self, *args: str) -> str:
        done = self._dvc(*args)
        if done.returncode != 0:
            raise VersioningError(f"dvc {' '.join(args)} failed: {last_line(done)}")
        return done.stdout

    def _configure_env_remote(self) -> None:
        """Make ``.dvc/config.local`` agree with MLOPS_DVC_REMOTE: the default remote while it is
        set, gone once it is not. DVC is only asked when the file says otherwise; two commands doing
        it at once write the same, and one killed halfway is put right by the next."""
        settings = Settings.load()
        local = self.project.root / ".dvc" / "config.local"
        text = local.read_text() if local.exists() else ""
        declared = f'remote "{ENV_REMOTE}"' in text
        if settings.dvc_remote is None:
            if declared and self._dvc("remote", "remove", "--local", ENV_REMOTE).returncode != 0 \
                    and f'remote "{ENV_REMOTE}"' in local.read_text():
                raise VersioningError(f"could not remove the DVC remote '{ENV_REMOTE}' from {local}")
            return
        wanted = [f"url = {settings.dvc_remote}", f"remote = {ENV_REMOTE}"]
        if settings.dvc_endpoint_url:
            wanted.append(f"endpointurl = {settings.dvc_endpoint_url}")
        if declared and all(line in text for line in wanted) and \
                (settings.dvc_endpoint_url or "endpointurl" not in text):
            return
        # --force replaces the whole section, so an endpoint no longer set goes with it.
        self._dvc_or_fail("remote", "add", "--local", "--default", "--force", ENV_REMOTE, settings.dvc_remote)
        if settings.dvc_endpoint_url:
            self._dvc_or_fail("remote", "modify", "--local", ENV_REMOTE, "endpointurl",
                              settings.dvc_endpoint_url)

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

    def remote_url(self, remote: str) -> str:
        done = self._dvc("config", f"remote.{remote}.url")
        return done.stdout.strip() if done.returncode == 0 else "?"

    def cloud_status(self, remote: str) -> subprocess.CompletedProcess[str]:
        """`dvc status --cloud` of the current version against ``remote``: it answers, and accepts us."""
        return self._dvc("status", "--cloud", "--remote", remote, "data.dvc")

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
            reasons.append(f"{remote}: {last_line(done)}")
        raise VersioningError(f"data version {version} is on no remote ({'; '.join(reasons)})")

    def checkout(self, version: str) -> str:
        """Point ``data.dvc`` at an earlier ``version`` and restore it; nothing changes if that fails."""
        known = {record.version for record in self.history()}
        matches = sorted(v for v in known | {self.current() or ""} if v and v.startswith(version))
        if len(matches) > 1:
            raise VersioningError(f"data version prefix {version} is ambiguous: {', '.join(matches)}")
        full = matches[0] if matches else version
        saved = self.project.dvc_file.read_text()
        pointer = self._pointer()
        outs = pointer.get("outs") or [{"path": "data"}]
        # size and nfiles describe the old version; DVC recomputes them from the md5's manifest.
        outs[0] = {"md5": full, "path": outs[0].get("path", "data"), "hash": "md5"}
        pointer["outs"] = outs
        self._write_pointer(yaml.safe_dump(pointer, sort_keys=False))
        try:
            self.pull()
            self._dvc_or_fail("checkout", "--force", "data.dvc")
        except BaseException:
            self._write_pointer(saved)
            raise
        return full

    def record(self, use_cases: list[str], rows: dict[str, int], source: str) -> VersionRecord:
        """Version ``data/`` as it is (changed outside ``mlops data add``); see ``apply``."""
        return self.apply(DataChange("record", use_cases, rows, source))

    def apply(self, change: DataChange) -> VersionRecord:
        """Write ``change.files``, ``dvc add`` the data folder, log the version in ``data.dvc``, push it
        to the default remote. Call under the data lock.

        A failure undoes everything; a killed process leaves the intent record for ``recover``.
        """
        log = IntentLog(self.project)
        intent = log.begin(self._intent(change), list(change.files))
        try:
            self._reached(change, STAGES[0])
            for path, write in change.files.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                replace_file(path, write, log.folder)
            intent = self._advance(log, intent, change, "appended")
            self._dvc_or_fail("add", "data")
            intent = self._advance(log, intent, change, "dvc_added")
            entry = self._complete(log, intent, change)
        except BaseException:
            self._undo(log, intent)
            raise
        log.clear()
        return entry

    def recover(self) -> Recovery | None:
        """Complete or undo the change a killed command left half-made; None when there is none.

        Completed when ``dvc add`` had finished (``data.dvc`` names a new version that ``data/``
        matches), undone otherwise. Call under the data lock. A failed push keeps the record.
        """
        log = IntentLog(self.project)
        intent = log.read()
        if intent is None:
            return None
        if not self._dvc_add_completed(intent):
            self._undo(log, intent)
            return Recovery(intent, None)
        try:
            entry = self._complete(log, intent, None)
        except VersioningError as exc:
            raise VersioningError(f"an interrupted {intent.describe()} could not be completed: {exc}; "
                                  "the next command tries again") from exc
        log.clear()
        return Recovery(intent, entry)

    def _intent(self, change: DataChange) -> DataIntent:
        return DataIntent(operation=change.operation, use_cases=change.use_cases, source=change.source,
                          source_sha256=change.source_sha256, rows=change.rows, new_rows=change.new_rows,
                          version_before=self.current(), pointer_before=self.project.dvc_file.read_text())

    def _complete(self, log: IntentLog, intent: DataIntent, change: DataChange | None) -> VersionRecord:
        """From a finished ``dvc add``: the ledger entry (unless there already), then the push."""
        version = self.current()
        assert version is not None
        history = self.history()
        if history and history[-1].version == version:
            entry = history[-1]
        else:
            entry = VersionRecord(version=version, time=datetime.now(UTC).isoformat(timespec="seconds"),
                                  use_cases=intent.use_cases, rows=intent.rows, source=intent.source)
            self._append_to_ledger(entry)
        intent = self._advance(log, intent, change, "ledger_written")
        self._dvc_or_fail("push", "data.dvc")
        self._advance(log, intent, change, "pushed")
        return entry

    def _dvc_add_completed(self, intent: DataIntent) -> bool:
        try:
            version = self.current()
        except (VersioningError, KeyError, IndexError, TypeError, AttributeError):
            return False  # data.dvc cut short while DVC rewrote it
        return version is not None and version != intent.version_before and self.is_clean()

    def _undo(self, log: IntentLog, intent: DataIntent) -> None:
        log.restore(intent)
        if self.project.dvc_file.read_text() != intent.pointer_before:
            self._write_pointer(intent.pointer_before)
        log.clear()

    def _advance(self, log: IntentLog, intent: DataIntent, change: DataChange | None,
                 stage: str) -> DataIntent:
        if change is None:  # recovering: the stage is recorded, and no failpoint interrupts it
            return log.advance(intent, stage)
        intent = log.advance(intent, stage)
        self._reached(change, stage)
        return intent

    @staticmethod
    def _reached(change: DataChange, stage: str) -> None:
        failpoints.hit(f"data.{change.operation}.{stage}")

    def _append_to_ledger(self, entry: VersionRecord) -> None:
        pointer = self._pointer()
        meta = pointer.setdefault("meta", {}) or {}
        pointer["meta"] = meta
        meta.setdefault("versions", []).append(entry.to_dict())
        self._write_pointer(yaml.safe_dump(pointer, sort_keys=False))

    def _write_pointer(self, text: str) -> None:
        replace_file(self.project.dvc_file, lambda stream: stream.write(text.encode()),
                     self.project.state_dir)


@dataclass(frozen=True)
class DataChange:
    """One new data version: the files it writes into ``data/`` and how the ledger describes it."""

    operation: str
    """Names the failpoints ``data.<operation>.<stage>``: ``add`` or ``record``."""
    use_cases: list[str]
    rows: dict[str, int]
    source: str
    files: Mapping[Path, Writer] = field(default_factory=dict)
    source_sha256: str = ""
    new_rows: int = 0


@dataclass(frozen=True)
class Recovery:
    """What became of a change a killed command left half-made."""

    intent: DataIntent
    completed: VersionRecord | None
    """The version the change was completed as; None when it was undone."""

    def message(self) -> str:
        if self.completed is None:
            outcome = f"rolled back; {self.intent.undo_advice()}"
        else:
            outcome = f"completed as data version {self.completed.version}"
        return f"recovered an interrupted {self.intent.describe()}: {outcome}"


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    useful = [line for line in lines if line.startswith("ERROR")] or lines
    return useful[-1].removeprefix("ERROR: ") if useful else f"exit code {done.returncode}"
