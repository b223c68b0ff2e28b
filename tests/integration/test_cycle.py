"""A retraining cycle on a real Prefect engine, a real MLflow store and registry, DVC and GX."""

from __future__ import annotations

import json
import os

import mlflow
import pytest
import yaml
from mlflow import MlflowClient

from pipelines.adapters import tracker as tracking
from pipelines.adapters.dvc import DataVersions
from pipelines.adapters.registry import CHALLENGER, CHAMPION, EVENTS_TAG, Registry, RegistryError
from pipelines.config.errors import UseCaseError, ValidationFailedError
from pipelines.flows.cycle import retrain
from pipelines.flows.registry import lineage
from pipelines.flows.training import TrainingError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

FAST = ["hist_boosting", "xgboost"]


@pytest.fixture
def registry(project, monkeypatch) -> Registry:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return Registry(project)


@pytest.fixture
def store(registry) -> MlflowClient:
    return registry.client


def runs_of(client: MlflowClient, experiment: str):
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])


def children(client, parent_id, experiment):
    return [r for r in runs_of(client, experiment) if r.data.tags.get("mlflow.parentRunId") == parent_id]


def test_cycle_tracks_registers_and_promotes(project, store):
    outcome = retrain("marketing", str(project.root), FAST)
    training = outcome.training
    version = DataVersions(project).current()

    assert (project.root / "mlflow.db").is_file()
    assert outcome.data_version == version
    parent = store.get_run(training.parent_run_id)
    assert parent.info.status == "FINISHED"
    for tags in (parent.data.tags,):
        assert tags[tracking.TAG_USE_CASE] == "marketing"
        assert tags[tracking.TAG_DATA_VERSION] == version
        assert tags[tracking.TAG_VALIDATION] == "passed"
        assert len(tags[tracking.TAG_GIT_COMMIT]) == 40
        assert tags[tracking.TAG_FLOW_RUN] not in ("", "none")
    assert parent.data.tags["promotion.decision"] == "promoted"

    kids = children(store, training.parent_run_id, "marketing")
    assert sorted(k.data.tags[tracking.TAG_CANDIDATE] for k in kids) == sorted(FAST)
    for kid in kids:
        tags, metrics = kid.data.tags, kid.data.metrics
        assert tags[tracking.TAG_DATA_VERSION] == version and tags[tracking.TAG_FAMILY]
        assert tags[tracking.TAG_FLOW_RUN] == parent.data.tags[tracking.TAG_FLOW_RUN]
        for name in ("roc_auc", "pr_auc", "lift_at_10", "capture_at_20", "brier"):
            assert f"cv_{name}" in metrics and f"holdout_{name}" in metrics
        assert metrics["train_seconds"] > 0
        assert len(store.get_metric_history(kid.info.run_id, "fold_roc_auc")) == 5
        artifacts = {a.path for a in store.list_artifacts(kid.info.run_id)}
        assert {"plots", "holdout_predictions.csv"} <= artifacts
        plots = {a.path for a in store.list_artifacts(kid.info.run_id, "plots")}
        assert {"plots/roc.png", "plots/gains.png", "plots/predicted_vs_actual.png"} <= plots
        inputs = kid.inputs.dataset_inputs
        assert inputs and inputs[0].dataset.digest == version[:36]
        assert "customer_id" not in inputs[0].dataset.schema
    parent_artifacts = {a.path for a in store.list_artifacts(training.parent_run_id)}
    assert {"leaderboard.md", "leaderboard.csv", "plots"} <= parent_artifacts

    # registered with lineage, challenger and (first time) champion
    assert training.version == "1" and training.champion == "1"
    registered = store.get_model_version("marketing", "1")
    assert set(registered.aliases) == {CHAMPION, CHALLENGER}
    assert registered.tags[tracking.TAG_DATA_VERSION] == version
    assert registered.tags["run_id"] in {k.info.run_id for k in kids}
    assert registered.tags["promotion.decision"] == "promoted"

    # the logged model scores raw rows and its signature holds no identifier or label
    model_uri = "models:/marketing@champion"
    info = mlflow.models.get_model_info(model_uri)
    inputs = {spec.name for spec in info.signature.inputs}
    assert "customer_id" not in inputs and "Purchase" not in inputs and "MOSTYPE" in inputs
    import pandas as pd

    rows = pd.read_csv(project.data_dir / "marketing.csv").head(20)
    scores = mlflow.pyfunc.load_model(model_uri).predict(rows.drop(columns=["Purchase"]))
    assert len(scores) == 20

    # lineage points back to the data and how to restore it
    text = lineage(project, "marketing@champion")
    assert f"mlops data checkout {version}" in text and registered.run_id in text


def test_rerun_reproduces_metrics_and_keeps_the_champion(project, store, registry):
    first = retrain("marketing", str(project.root), FAST).training
    second = retrain("marketing", str(project.root), FAST).training

    def holdout(parent_id):
        return {k.data.tags[tracking.TAG_CANDIDATE]: {m: v for m, v in k.data.metrics.items()
                                                      if m.startswith(("cv_", "holdout_", "fold_"))}
                for k in children(store, parent_id, "marketing")}

    assert holdout(first.parent_run_id) == holdout(second.parent_run_id)
    assert second.version == "2" and second.champion == "1"
    assert second.decision is not None and not second.decision.promote
    assert "does not beat champion v1" in second.decision.reason
    assert str(registry.version_by_alias("marketing", CHALLENGER).version) == "2"


def test_promote_rollback_and_history(project, store, registry):
    retrain("marketing", str(project.root), FAST)
    retrain("marketing", str(project.root), FAST)
    registry.set_champion("marketing", "2", "better on last week's campaign", "tester")
    assert str(registry.version_by_alias("marketing", CHAMPION).version) == "2"
    promoted = store.get_model_version("marketing", "2").tags
    assert promoted["champion.reason"] == "better on last week's campaign"
    assert promoted["champion.by"] == "tester"

    assert registry.rollback("marketing", "bad week", "tester") == ("2", "1")
    assert str(registry.version_by_alias("marketing", CHAMPION).version) == "1"
    with pytest.raises(RegistryError, match="no earlier champion"):
        registry.rollback("marketing", "again", "tester")
    events = json.loads(store.get_registered_model("marketing").tags[EVENTS_TAG])
    assert [e["action"] for e in events] == ["promote", "promote", "rollback"]
    with pytest.raises(RegistryError, match="no version 9"):
        registry.set_champion("marketing", "9", "typo", "tester")
    with pytest.raises(RegistryError, match="no registered model 'nope'"):
        registry.rollback("nope", "x", "tester")


def test_invalid_data_trains_nothing_and_keeps_the_champion(project, store, registry):
    retrain("marketing", str(project.root), FAST)
    runs_before = len(runs_of(store, "marketing"))
    dataset = project.data_dir / "marketing.csv"
    lines = dataset.read_text().splitlines()
    header = lines[0].split(",")
    broken = lines[1].split(",")
    broken[header.index("MOSTYPE")] = "99"
    dataset.write_text("\n".join([lines[0], ",".join(broken), *lines[2:]]) + "\n")

    with pytest.raises(ValidationFailedError):
        retrain("marketing", str(project.root), FAST)
    assert len(runs_of(store, "marketing")) == runs_before
    assert str(registry.version_by_alias("marketing", CHAMPION).version) == "1"
    assert len(store.search_model_versions("name='marketing'")) == 1


def test_failing_candidates_fail_the_run_and_keep_the_champion(project, store, registry):
    retrain("marketing", str(project.root), FAST)
    definition = project.usecases_dir / "marketing.yaml"
    raw = yaml.safe_load(definition.read_text())
    raw["candidates"] = {"hist_boosting": {"params": {"learning_rate": -1.0}}}
    definition.write_text(yaml.safe_dump(raw))

    with pytest.raises(TrainingError, match="every candidate failed"):
        retrain("marketing", str(project.root))
    latest = runs_of(store, "marketing")
    parents = [r for r in latest if r.data.tags.get(tracking.TAG_ROLE) == "cycle"]
    assert parents[-1].info.status == "FAILED"
    failed = [r for r in latest if r.data.tags.get(tracking.TAG_CANDIDATE) == "hist_boosting"][-1]
    assert failed.info.status == "FAILED" and "learning_rate" in failed.data.tags["error"]
    # Trained in this process's threads: the worker tag names it.
    assert failed.data.tags[tracking.TAG_WORKER].endswith(f":{os.getpid()}")
    assert str(registry.version_by_alias("marketing", CHAMPION).version) == "1"


def test_unknown_candidate_is_a_clear_error(project, store):
    with pytest.raises(UseCaseError, match="no candidate gbm"):
        retrain("marketing", str(project.root), ["gbm"])


def test_a_new_model_family_is_one_declaration(project, store, monkeypatch):
    """The README's recipe: declare a family, name it in a definition, and a cycle trains, logs and
    registers it with the requirements it declared."""
    from sklearn.linear_model import LogisticRegression

    from models.families import FAMILIES, ModelFamily

    def build(task, params, random_state, class_ratio):
        return LogisticRegression(**{"C": 0.5, "max_iter": 2000, "random_state": random_state, **params})

    monkeypatch.setitem(FAMILIES, "toy", ModelFamily("toy", "a toy logistic regression", build,
                                                     preload=("sklearn.linear_model",),
                                                     requirements=("threadpoolctl",)))
    definition = project.usecases_dir / "marketing.yaml"
    raw = yaml.safe_load(definition.read_text())
    raw["candidates"] = {"toy": {"params": {"C": 0.1}}}
    definition.write_text(yaml.safe_dump(raw))

    training = retrain("marketing", str(project.root)).training
    assert training.version == "1" and not training.failed
    version = store.get_model_version("marketing", "1")
    assert version.tags[tracking.TAG_CANDIDATE] == "toy" and version.tags[tracking.TAG_FAMILY] == "toy"
    run = store.get_run(version.run_id)
    assert run.data.params["model.C"] == "0.1"
    with open(mlflow.pyfunc.get_model_dependencies("models:/marketing/1")) as stream:
        requirements = stream.read()
    assert "scikit-learn==" in requirements and "threadpoolctl==" in requirements
    assert "torch" not in requirements


def test_a_target_column_that_is_not_there_is_reported_before_validation(project, store):
    definition = project.usecases_dir / "marketing.yaml"
    raw = yaml.safe_load(definition.read_text())
    raw["target"] = "Purchse"
    definition.write_text(yaml.safe_dump(raw))
    with pytest.raises(UseCaseError, match=r"marketing.yaml: target: column 'Purchse' is not in "
                                           r"marketing.csv \(did you mean 'Purchase'\?\)"):
        retrain("marketing", str(project.root))
    assert store.get_experiment_by_name("marketing") is None
    assert not (project.state_dir / "gx").exists()  # validation never ran
