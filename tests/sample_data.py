"""The shipped sample datasets, read straight from the DVC remote committed with the repository.

Unit tests use these rather than data/, which a fresh clone lacks and a working copy may have
moved to a later version.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SAMPLE_REMOTE = REPO / "infra" / "sample-data" / "dvc-remote" / "files" / "md5"


def _object(md5: str) -> Path:
    return SAMPLE_REMOTE / md5[:2] / md5[2:]


def sample_csv(name: str) -> Path:
    """Path of ``name`` (e.g. 'stock.csv') as shipped: the first version in data.dvc's ledger."""
    ledger = yaml.safe_load((REPO / "data.dvc").read_text())["meta"]["versions"]
    manifest = json.loads(_object(ledger[0]["version"]).read_text())
    by_name = {entry["relpath"]: entry["md5"] for entry in manifest}
    return _object(by_name[name])
