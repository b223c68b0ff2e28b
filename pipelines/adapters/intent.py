"""The intent record of a change to ``data/``: what is about to change, written before anything does.

A command killed half-way through a change leaves ``.mlops/intent/data.json`` behind; the next
command that touches data reads it and either completes the change or undoes it. Each dataset file
about to change is kept beside the record as a hard link: the new content arrives by ``os.replace``,
so the old bytes stay whole under the link at no cost. The record also keeps the text of
``data.dvc``, which ``dvc add`` rewrites in place.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from pipelines.config.errors import VersioningError
from pipelines.config.project import Project

STAGES = ("intent_written", "appended", "dvc_added", "ledger_written", "pushed")
"""The stages of a change, in order; each is also the name of a failpoint after it."""

Writer = Callable[[BinaryIO], None]
"""Writes a file's whole new content to the stream it is given."""


@dataclass(frozen=True)
class DataIntent:
    operation: str
    """``add`` (``mlops data add``, the landing zone) or ``record`` (``mlops run`` versioning data
    changed outside ``mlops data add``)."""
    use_cases: list[str]
    source: str
    source_sha256: str
    rows: dict[str, int]
    """Rows of each changed dataset once the change is made, as the ledger records them."""
    new_rows: int
    version_before: str | None
    pointer_before: str
    """The text of ``data.dvc`` before the change."""
    backups: dict[str, str | None] = field(default_factory=dict)
    """Each file about to change (relative to the project) and its backup's name beside the
    record; None when the file did not exist before."""
    stage: str = STAGES[0]
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def describe(self) -> str:
        use_cases = ", ".join(self.use_cases)
        if self.operation == "add":
            return f"data add of {self.source} ({use_cases})"
        return f"versioning of data/ by {self.source} ({use_cases})"

    def undo_advice(self) -> str:
        if self.operation == "add":
            return "add the file again"
        return "data/ keeps its changes; the next `mlops run` versions them"


class IntentLog:
    """The one pending change of a project's ``data/``, if any. Use under the data lock."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.folder = project.state_dir / "intent"
        self.path = self.folder / "data.json"

    def pending(self) -> bool:
        return self.path.is_file()

    def read(self) -> DataIntent | None:
        if not self.path.is_file():
            return None
        try:
            return DataIntent(**json.loads(self.path.read_text()))
        except (ValueError, TypeError) as exc:
            raise VersioningError(f"{self.path} is unreadable ({exc}); compare data/ with "
                                  "`dvc status`, then delete the file") from exc

    def begin(self, intent: DataIntent, changing: list[Path]) -> DataIntent:
        """Keep the files in ``changing`` aside and write the record: nothing has changed yet."""
        if self.pending():
            raise VersioningError(f"an interrupted change of data/ is pending ({self.path}); "
                                  "run the command again to finish or undo it first")
        shutil.rmtree(self.folder, ignore_errors=True)  # what a clear cut short left behind
        self.folder.mkdir(parents=True)
        backups = {}
        for index, path in enumerate(changing):
            name = f"{index}-{path.name}" if path.exists() else None
            if name is not None:
                _keep(path, self.folder / name)
            backups[str(path.relative_to(self.project.root))] = name
        return self._write(replace(intent, backups=backups, stage=STAGES[0]))

    def advance(self, intent: DataIntent, stage: str) -> DataIntent:
        return self._write(replace(intent, stage=stage))

    def restore(self, intent: DataIntent) -> None:
        """Put every backed-up file back, and remove those that did not exist; safe to repeat."""
        for relative, name in intent.backups.items():
            target = self.project.root / relative
            if name is None:
                target.unlink(missing_ok=True)
                continue
            # A fresh link renamed over the target: the backup stays, should this be cut short.
            temporary = self.folder / f".restore-{uuid.uuid4().hex[:8]}"
            os.link(self.folder / name, temporary)
            os.replace(temporary, target)
            sync_folder(target.parent)

    def clear(self) -> None:
        """The change is whole (done or undone): drop the record first, then the backups."""
        self.path.unlink(missing_ok=True)
        sync_folder(self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _write(self, intent: DataIntent) -> DataIntent:
        text = json.dumps(asdict(intent), indent=2).encode()
        replace_file(self.path, lambda stream: stream.write(text), self.folder)
        return intent


def replace_file(path: Path, write: Writer, scratch: Path) -> None:
    """Give ``path`` new content whole or not at all: written to a file in ``scratch`` (on the same
    file system, outside the versioned folder), flushed to disk, renamed over ``path``."""
    scratch.mkdir(parents=True, exist_ok=True)
    temporary = scratch / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with temporary.open("xb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_folder(path.parent)


def sync_folder(folder: Path) -> None:
    """Make a rename or removal in ``folder`` survive a power cut, not only a killed process."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _keep(path: Path, backup: Path) -> None:
    try:
        os.link(path, backup)
    except OSError:  # a file system without hard links: a copy, flushed to disk
        shutil.copy2(path, backup)
        with backup.open("rb+") as stream:
            os.fsync(stream.fileno())
