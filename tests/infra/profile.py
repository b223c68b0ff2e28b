"""What the tests of infra/ share: the team profile's files, loaded, and its secrets, generated."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
COMPOSE_FILE = INFRA / "compose.yaml"
ONE_SHOT = {"mlflow-migrate", "prefect-migrate", "project-init", "prefect-deploy"}
"""The steps that run once and exit; every other service runs until stopped."""


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def env_files() -> dict[str, list[str]]:
    """x-env-files of compose.yaml: the files infra/make-secrets.sh writes, with their variables."""
    return compose()["x-env-files"]


def make_secrets(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(INFRA / "make-secrets.sh"), "--out", str(out), *args],
                          capture_output=True, text=True, check=False, timeout=30)


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines, as docker compose's env_file and kubectl's --from-env-file read them."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value
    return pairs
