"""Rejected files are kept, with the reason, in ``data/quarantine/``."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

from pipelines.project import Project


def quarantine(project: Project, use_case: str, source: Path, reason: str,
               report: dict | None = None) -> Path:
    """Copy ``source`` aside with a text and a JSON report; returns the copy's path."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = project.quarantine_dir
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / f"{stamp}-{use_case}-{source.name}"
    if source.is_file():
        shutil.copy2(source, kept)
    details = {"use_case": use_case, "source": str(source), "rejected_at": stamp,
               "reason": reason, "report": report}
    kept.with_name(kept.name + ".report.json").write_text(json.dumps(details, indent=2,
                                                                     default=str))
    text = report.get("text") if report else None
    kept.with_name(kept.name + ".report.txt").write_text(f"{reason}\n\n{text or ''}".rstrip() + "\n")
    return kept
