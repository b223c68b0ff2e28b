"""Fingerprints of a model's files: recorded at registration, checked before the model is loaded.

Logged models are pickles, and loading a pickle runs code. A model whose files changed after it was
registered (in the artifact store, by anyone who can write there) is refused rather than loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pipelines.config.errors import MlopsError

DIGEST_TAG = "model_sha256"
# Written by MLflow into a registered version's download; not a file of the model.
_NOT_THE_MODEL = {"registered_model_meta"}
_CHUNK = 1 << 20


class IntegrityError(MlopsError):
    """A registered model's files are not the files that were registered."""


def folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and bytes, in path order: any change, move or
    addition of a file changes it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.relative_to(folder).as_posix() in _NOT_THE_MODEL:
            continue
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def verify(folder: Path, recorded: str | None, label: str) -> None:
    """Raise a one-line ``IntegrityError`` when ``folder`` does not hash to ``recorded``."""
    if recorded is None:
        return
    found = folder_digest(folder)
    if found != recorded:
        raise IntegrityError(f"{label}: its files changed after registration (sha256 {found[:12]}..., "
                             f"recorded {recorded[:12]}...); refusing to load it. Restore the files or "
                             "register a new version")
