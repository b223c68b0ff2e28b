"""Use case definitions for tests: the shipped ones, and variants written as real YAML files."""

from __future__ import annotations

from pathlib import Path

import yaml

USECASES = Path(__file__).resolve().parents[1] / "pipelines" / "usecases"
DROP = object()
"""A change that removes the key."""


def shipped(name: str) -> dict:
    return yaml.safe_load((USECASES / f"{name}.yaml").read_text())


def write_definition(folder: Path, raw: dict, stem: str | None = None, **changes) -> Path:
    """``raw`` with ``changes`` applied, as ``<stem>.yaml`` (default: its name) in ``folder``."""
    raw = dict(raw)
    for field, value in changes.items():
        if value is DROP:
            raw.pop(field, None)
        else:
            raw[field] = value
    path = folder / f"{stem or raw.get('name', 'case')}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path
