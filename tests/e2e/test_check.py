"""Mistakes in a definition, as a user meets them: one line from `mlops check` and from `mlops run`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.integration]

MLOPS = str(Path(sys.executable).parent / "mlops")

MISTAKES = {
    "misspelled key": ({"promotion_margn": 0.01},
                       "marketing.yaml: unknown key 'promotion_margn' (did you mean 'promotion_margin'?)"),
    "primary metric not among the metrics": (
        {"primary_metric": "log_loss"},
        "marketing.yaml: primary_metric: 'log_loss' is not among metrics (roc_auc, pr_auc, lift_at_10, "
        "lift_at_20, capture_at_10, capture_at_20, brier)"),
    "negative holdout": ({"split": {"strategy": "stratified", "holdout": -0.2}},
                         "marketing.yaml: split.holdout: must be greater than 0, got -0.2"),
    "target column not in the data": (
        {"target": "Purchse", "non_inputs": ["customer_id", "Purchse"]},
        "marketing.yaml: target: column 'Purchse' is not in marketing.csv (did you mean 'Purchase'?)"),
}


def mlops(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL")}
    return subprocess.run([MLOPS, *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def break_definition(project: Path, changes: dict) -> None:
    path = project / "pipelines" / "usecases" / "marketing.yaml"
    path.write_text(yaml.safe_dump(yaml.safe_load(path.read_text()) | changes, sort_keys=False))


@pytest.mark.parametrize("mistake", MISTAKES)
def test_check_reports_the_mistake_in_one_line(project, mistake):
    changes, message = MISTAKES[mistake]
    break_definition(project.root, changes)
    done = mlops(project.root, "check")
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"  x {message}\n" in done.stdout
    assert "stock: ok" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("mistake", MISTAKES)
def test_run_stops_at_the_mistake_before_anything_starts(project, mistake):
    changes, message = MISTAKES[mistake]
    break_definition(project.root, changes)
    done = mlops(project.root, "run", "--use-case", "all")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr == f"error: {message}\n"
    assert done.stdout == ""
    assert not (project.root / "mlflow.db").exists()  # nothing was trained or recorded


def test_a_valid_project_checks_clean_and_the_schema_is_printed(project):
    done = mlops(project.root, "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith("marketing: ok; data: 5822 rows of marketing.csv")
    schema = mlops(project.root, "check", "--schema")
    assert schema.returncode == 0
    assert schema.stdout == (project.root / "pipelines" / "usecases" / "usecase.schema.json").read_text()


def test_a_bad_setting_is_one_line(project):
    env = {**os.environ, "MLOPS_MAX_WORKERS": "many"}
    done = subprocess.run([MLOPS, "check"], cwd=project.root, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("error: MLOPS_MAX_WORKERS: must be a valid integer")
    assert len(done.stderr.splitlines()) == 1
