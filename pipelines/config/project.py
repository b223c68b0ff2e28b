"""Locating the project a command acts on, and the paths inside it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.config.errors import ProjectNotFoundError
from pipelines.config.settings import Settings

MARKER = "data.dvc"


@dataclass(frozen=True)
class Project:
    """A clone of this repository: the folder that holds ``data.dvc``."""

    root: Path

    @classmethod
    def find(cls, start: Path | str | None = None) -> Project:
        """Walk up from ``start`` (default: ``MLOPS_PROJECT`` or the working directory)."""
        origin = Path(start or Settings.load().project or Path.cwd()).resolve()
        for folder in (origin, *origin.parents):
            if (folder / MARKER).is_file():
                return cls(folder)
        raise ProjectNotFoundError(
            f"no project found: neither {origin} nor any parent folder holds {MARKER}"
        )

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def dvc_file(self) -> Path:
        return self.root / MARKER

    @property
    def usecases_dir(self) -> Path:
        return self.root / "pipelines" / "usecases"

    @property
    def expectations_dir(self) -> Path:
        return self.root / "pipelines" / "expectations"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    def incoming_dir(self, use_case: str) -> Path:
        """The landing zone: files dropped here are validated, versioned and trained on."""
        return self.data_dir / "incoming" / use_case

    def landed_dir(self, use_case: str) -> Path:
        """Accepted files, each with the record of what became of it."""
        return self.data_dir / "landed" / use_case

    @property
    def state_dir(self) -> Path:
        """Local, git-ignored working state: validation reports, Data Docs, locks."""
        return self.root / ".mlops"

    @property
    def lock_file(self) -> Path:
        return self.state_dir / "data.lock"
