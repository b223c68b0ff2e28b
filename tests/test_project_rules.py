"""Rules of the code base that a reviewer would otherwise check by hand."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVICE_LIBRARIES = {"prefect", "mlflow", "dvc", "great_expectations", "pipelines"}


def test_features_and_models_are_pure():
    offenders = []
    for package in ("features", "models"):
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                              if n.split(".")[0] in SERVICE_LIBRARIES]
    assert offenders == []


def test_ruff_clean():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--output-format", "concise",
                           str(REPO)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


def test_help_is_fast_because_heavy_libraries_load_lazily():
    probe = ("import sys, pipelines.cli; "
             "print(sorted(m for m in ('prefect', 'mlflow', 'great_expectations', 'dvc', 'torch') "
             "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
