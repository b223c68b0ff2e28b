"""A cycle that searches hyperparameters: every trial recorded, the best logged, the holdout untouched."""

from __future__ import annotations

import io

import mlflow
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from pipelines.adapters.tracker import tracking_uri
from pipelines.flows.cycle import retrain

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def with_tuning(project, budget_s: float, trials: int) -> None:
    path = project.root / "pipelines" / "usecases" / "marketing.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["tuning"] = {"budget_s": budget_s, "trials": trials}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def candidate_runs(client: MlflowClient, parent_id: str) -> dict[str, mlflow.entities.Run]:
    experiment = client.get_experiment_by_name("marketing")
    runs = client.search_runs([experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    return {run.data.params["candidate"]: run for run in runs}


def trials_table(client: MlflowClient, run_id: str) -> pd.DataFrame:
    local = client.download_artifacts(run_id, "tuning/trials.csv")
    return pd.read_csv(io.StringIO(open(local).read()))


def test_a_tuned_cycle_records_every_trial_and_logs_the_best_parameters(project, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLOPS_TUNING", "true")
    with_tuning(project, budget_s=30, trials=4)
    outcome = retrain("marketing", str(project.root), ["linear", "hist_boosting"])
    client = MlflowClient(tracking_uri(project))
    runs = candidate_runs(client, outcome.training.parent_run_id)
    assert set(runs) == {"linear", "hist_boosting"}
    for name, run in runs.items():
        table = trials_table(client, run.info.run_id)
        assert run.data.metrics["tuning_trials"] == len(table) <= 4
        assert table["state"].iloc[0] == "defaults"
        assert "stopped by" in run.data.params["tuning"]
        finished = table[table["state"].isin(["defaults", "complete"])]
        best = finished["value"].max()
        # The candidate's cross-validation is the best trial's: the holdout chose nothing.
        assert run.data.metrics["cv_roc_auc"] == pytest.approx(best)
        tuned = {key.removeprefix("tuned."): value for key, value in run.data.params.items()
                 if key.startswith("tuned.")}
        winner = finished.loc[finished["value"].idxmax()]
        if winner["state"] == "defaults":
            assert not tuned, f"{name}: the defaults won but tuned parameters were logged"
        else:
            assert tuned, f"{name}: a tuned trial won but no tuned parameters were logged"
        for key, value in tuned.items():
            assert float(value) == pytest.approx(float(winner[f"param.{key}"])), f"{name}: {key}"


def test_no_tune_keeps_the_declared_hyperparameters(project, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLOPS_TUNING", "true")
    with_tuning(project, budget_s=30, trials=4)
    outcome = retrain("marketing", str(project.root), ["linear"], tune=False)
    run = candidate_runs(MlflowClient(tracking_uri(project)), outcome.training.parent_run_id)["linear"]
    assert "tuning" not in run.data.params and "tuning_trials" not in run.data.metrics
    assert not any(key.startswith("tuned.") for key in run.data.params)
