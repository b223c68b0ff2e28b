"""The landing zone watcher: files dropped in ``data/incoming/<use case>/``, one at a time, in order.

A file stays in the landing zone until it is dealt with, so a watcher that stops (or crashes)
picks it up again on restart; landing the same rows twice versions nothing and triggers nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipelines.adapters.files import quarantine
from pipelines.config.project import Project

log = logging.getLogger("mlops.landing")
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp")
ATTEMPTS = 3


def pending_files(folder: Path, settle_seconds: float) -> list[Path]:
    """Files ready to land, oldest first: not hidden, not partial, unchanged for ``settle_seconds``."""
    if not folder.is_dir():
        return []
    now = time.time()
    ready = []
    for entry in folder.iterdir():
        if (not entry.is_file() or entry.name.startswith(".")
                or entry.name.endswith(IGNORED_SUFFIXES)):
            continue
        modified = entry.stat().st_mtime
        if now - modified >= settle_seconds:
            ready.append((modified, entry.name, entry))
    return [entry for _, _, entry in sorted(ready)]


class LandingZone:
    """Polls every use case's landing folder; lands each file with ``land(use case, path, project root)``."""

    def __init__(self, project: Project, use_cases: list[str], land: Callable[[str, str, str], object],
                 poll_seconds: float = 10.0, settle_seconds: float = 2.0) -> None:
        self.project = project
        self.use_cases = use_cases
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self._land = land
        self._failures: dict[Path, int] = {}
        self._stop = threading.Event()
        self.busy: str | None = None
        """The file being landed right now, if any."""
        for name in use_cases:
            project.incoming_dir(name).mkdir(parents=True, exist_ok=True)

    def land(self, use_case: str, path: Path) -> object:
        return self._land(use_case, str(path), str(self.project.root))

    def process_pending(self) -> list[object]:
        """Land every ready file, use case by use case, each folder oldest first."""
        landed = []
        for name in self.use_cases:
            for path in pending_files(self.project.incoming_dir(name), self.settle_seconds):
                if self._stop.is_set():
                    return landed
                outcome = self._land_one(name, path)
                if outcome is not None:
                    landed.append(outcome)
        return landed

    def _land_one(self, use_case: str, path: Path) -> object | None:
        log.info(f"{use_case}: landing {path.name}")
        self.busy = f"{use_case}/{path.name}"
        try:
            outcome = self.land(use_case, path)
        except Exception as exc:  # noqa: BLE001 - one file's trouble must not stop the watcher
            failures = self._failures.get(path, 0) + 1
            self._failures[path] = failures
            if failures < ATTEMPTS:
                log.warning(f"{use_case}: {path.name} could not be landed ({exc}); "
                            f"trying again (attempt {failures} of {ATTEMPTS})")
                return None
            kept = quarantine(self.project, use_case, path, f"could not be landed: {exc}")
            path.unlink(missing_ok=True)
            log.error(f"{use_case}: {path.name} failed {ATTEMPTS} times; kept in {kept}")
            return None
        finally:
            self.busy = None
        self._failures.pop(path, None)
        self._file_away(use_case, path, outcome)
        return outcome

    def _file_away(self, use_case: str, path: Path, outcome: object) -> None:
        status = getattr(outcome, "status", "accepted")
        if status == "rejected":
            # The data layer kept a copy with its report in quarantine.
            path.unlink(missing_ok=True)
            log.warning(f"{use_case}: {path.name} rejected: {getattr(outcome, 'reason', '')}")
            return
        folder = self.project.landed_dir(use_case)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"{stamp}-{path.name}"
        record = outcome.to_dict() if hasattr(outcome, "to_dict") else {"status": status}
        record["landed_at"] = stamp
        target.with_name(target.name + ".record.json").write_text(json.dumps(record, indent=2, default=str))
        shutil.move(str(path), target)
        log.info(f"{use_case}: {path.name} {status}; data version {getattr(outcome, 'data_version', None)}")

    def run(self) -> None:
        """Poll until ``stop``; files that arrived while nobody watched land first."""
        while not self._stop.is_set():
            try:
                self.process_pending()
            except Exception:  # noqa: BLE001 - keep watching; the next poll tries again
                log.exception("landing zone poll failed")
            self._stop.wait(self.poll_seconds)

    def stop(self) -> None:
        self._stop.set()
