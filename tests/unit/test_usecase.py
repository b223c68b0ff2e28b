import json
from pathlib import Path

import pytest

from pipelines.config import definitions
from pipelines.config.errors import ProjectNotFoundError, UseCaseError
from pipelines.config.project import Project
from tests.definitions import DROP, USECASES, shipped, write_definition

REPO = Path(__file__).resolve().parents[2]


def problems_of(tmp_path: Path, use_case: str = "stock", **changes) -> list[str]:
    with pytest.raises(UseCaseError) as error:
        definitions.parse(write_definition(tmp_path, shipped(use_case), use_case, **changes))
    return error.value.problems


def test_shipped_use_cases_load():
    project = Project(REPO)
    assert definitions.available(project) == ["marketing", "stock"]
    stock = definitions.load(project, "stock")
    assert stock.key == ("Ticker", "Date")
    assert stock.order.previous_column == "previous Date of the same Ticker"
    assert [u.name for u in definitions.resolve(project, "all")] == ["marketing", "stock"]


def test_unknown_use_case_names_the_known_ones():
    with pytest.raises(UseCaseError, match=r"unknown use case 'nope' \(available: marketing, stock\)"):
        definitions.load(Project(REPO), "nope")


def test_project_is_found_from_a_subfolder():
    assert Project.find(REPO / "pipelines" / "usecases").root == REPO


def test_outside_a_project(tmp_path):
    with pytest.raises(ProjectNotFoundError, match="data.dvc"):
        Project.find(tmp_path)


def test_a_definition_is_frozen():
    stock = definitions.parse(USECASES / "stock.yaml")
    with pytest.raises(ValueError, match="frozen"):
        stock.promotion_margin = 0.5


# --- every problem is one line: the file, the key, what is allowed ------------------------------

BAD_FIELDS = [
    ({"promotion_margn": 0.01},
     "stock.yaml: unknown key 'promotion_margn' (did you mean 'promotion_margin'?)"),
    ({"primary_metric": {"classification": "log_loss"}, "metrics": {"classification": ["roc_auc"]}},
     "stock.yaml: primary_metric: 'log_loss' is not among metrics (roc_auc)"),
    ({"split": {"strategy": "walk_forward", "holdout": -0.2}},
     "stock.yaml: split.holdout: must be greater than 0, got -0.2"),
    ({"split": {"holdout": 1.0}}, "stock.yaml: split.holdout: must be less than 1, got 1.0"),
    ({"split": {"strategy": "random"}},
     "stock.yaml: split.strategy: must be 'walk_forward' or 'stratified', got 'random'"),
    ({"split": {"strategy": "walk_forward", "embargo": 0}},
     "stock.yaml: split.embargo: 0 is shorter than the prediction horizon (1); training labels would "
     "overlap the test rows"),
    ({"horizon": 5}, "stock.yaml: split.embargo: 1 is shorter than the prediction horizon (5)"),
    ({"candidates": {"linear": {}, "catboost": {}}},
     "stock.yaml: candidates.catboost.model: unknown model 'catboost' (available: linear, hist_boosting"),
    ({"candidates": {"fast": {"model": "svm"}}}, "stock.yaml: candidates.fast.model: unknown model 'svm'"),
    ({"candidates": {"forest": {}}}, "stock.yaml: candidates.forest.model: unknown model 'forest' "
                                     "(renamed 'hist_boosting')"),
    ({"candidates": {"linear": {"paramz": {"C": 1}}}},
     "stock.yaml: unknown key 'paramz' in candidates.linear (did you mean 'params'?)"),
    ({"candidates": []}, "stock.yaml: candidates: must list at least 1 item(s), got {}"),
    ({"metrics": {"classification": ["roc_auc", "accuracy"]}},
     "stock.yaml: metrics: unknown classification metric 'accuracy' (available: brier"),
    ({"primary_metric": "rmse"}, "stock.yaml: primary_metric: unknown classification metric 'rmse'"),
    ({"features": "features.stock.StockFeatures"},
     "stock.yaml: features: 'features.stock.StockFeatures' must look like package.module:name"),
    ({"features": "features.nowhere:StockFeatures"},
     "stock.yaml: features: 'features.nowhere:StockFeatures': cannot import features.nowhere"),
    ({"features": "features.stock:NoSuchFeatures"},
     "stock.yaml: features: 'features.stock:NoSuchFeatures': features.stock has no NoSuchFeatures"),
    ({"target": {"classification": "features.stock:tomorrow"}},
     "stock.yaml: target: 'features.stock:tomorrow': features.stock has no tomorrow"),
    ({"target": {"regression": "features.stock:next_day_return"}},
     "stock.yaml: target: no value for task 'classification'"),
    ({"target": {"classfication": "features.stock:next_day_direction"}},
     "stock.yaml: target: unknown task 'classfication' (did you mean 'classification'?)"),
    ({"task": "ranking"}, "stock.yaml: task: must be 'classification' or 'regression', got 'ranking'"),
    ({"baselines": ["coin_flip"]},
     "stock.yaml: baselines: unknown baseline 'coin_flip' (available: base_rate"),
    ({"promotion_margin": -0.1}, "stock.yaml: promotion_margin: must be greater than or equal to 0"),
    ({"key": []}, "stock.yaml: key: must list at least 1 item(s)"),
    ({"dataset": DROP}, "stock.yaml: missing key 'dataset'"),
    ({"name": "stocks"}, "stock.yaml: name: 'stocks' must match the file name ('stock')"),
    ({"retraining": {"schedule": "every day"}},
     "stock.yaml: retraining.schedule: 'every day' is not a cron expression"),
    ({"retraining": {"on_new_data": "sometimes"}},
     "stock.yaml: retraining.on_new_data: must be 'always', 'drift' or 'never', got 'sometimes'"),
    ({"retraining": {"drift_treshold": 0.3}},
     "stock.yaml: unknown key 'drift_treshold' in retraining (did you mean 'drift_threshold'?)"),
    ({"retraining": {"drift_threshold": 0}},
     "stock.yaml: retraining.drift_threshold: must be greater than 0"),
    ({"retraining": {"drift_view": "features.stock:Nothing"}},
     "stock.yaml: retraining.drift_view: 'features.stock:Nothing': features.stock has no Nothing"),
]


@pytest.mark.parametrize(("changes", "message"), BAD_FIELDS, ids=[str(c)[:40] for c, _ in BAD_FIELDS])
def test_a_bad_field_is_one_line_naming_file_key_and_what_is_allowed(tmp_path, changes, message):
    found = problems_of(tmp_path, **changes)
    assert any(line.startswith(message) for line in found), found
    assert all("\n" not in line for line in found)


def test_several_problems_are_each_listed_and_the_error_names_the_first(tmp_path):
    with pytest.raises(UseCaseError) as error:
        definitions.parse(write_definition(tmp_path, shipped("marketing"), "marketing", promotion_margn=0.01,
                                split={"holdout": 1.5}))
    assert len(error.value.problems) == 2
    assert str(error.value).startswith(error.value.problems[0])
    assert str(error.value).endswith("(and 1 more: see `mlops check`)")


def test_not_yaml_or_not_a_mapping(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("key: [a, b\n")
    with pytest.raises(UseCaseError, match=r"broken.yaml: not valid YAML \(line 2\)"):
        definitions.parse(path)
    path.write_text("- just\n- a list\n")
    with pytest.raises(UseCaseError, match="broken.yaml: must be a mapping"):
        definitions.parse(path)


SCORING = [
    ("marketing", {"output": "top_k"}, "scoring.output: must be 'ranked_list' or 'latest_per_group'"),
    ("marketing", {"outptu": "ranked_list"}, "unknown key 'outptu' in scoring (did you mean 'output'?)"),
    ("marketing", {"history": 5}, "scoring: history only applies to output latest_per_group"),
    ("marketing", {"output": "latest_per_group"}, "scoring.output: latest_per_group needs the use case's "
                                                  "'order'"),
    ("marketing", {"score": "customer_id"}, "scoring.score: 'customer_id' is also a key column"),
    ("stock", {"group": "Close"}, "scoring.group: 'Close' must be one of the key columns (Ticker, Date)"),
    ("stock", {"history": -1}, "scoring.history: must be greater than or equal to 0"),
    ("stock", {"score": ""}, "scoring.score: String should have at least 1 character"),
    ("stock", ["ranked_list"], "scoring: must be a valid dictionary or instance of Scoring"),
]


@pytest.mark.parametrize(("name", "section", "message"), SCORING)
def test_bad_scoring_sections_name_the_field(tmp_path, name, section, message):
    found = problems_of(tmp_path, use_case=name, scoring=section)
    assert any(line.startswith(f"{name}.yaml: {message}") for line in found), found


# --- defaults and per-task fields ---------------------------------------------------------------

def test_per_task_fields_follow_the_task(tmp_path):
    regression = definitions.parse(write_definition(tmp_path, shipped("stock"), "stock", task="regression"))
    assert regression.target == "features.stock:next_day_return"
    assert regression.metrics == ("rmse", "mae", "directional_accuracy")
    assert regression.primary_metric == "rmse"
    assert regression.scoring.score == "predicted_return"


def test_a_primary_metric_outside_the_default_metrics_is_put_first(tmp_path):
    minimal = {"dataset": "leads.csv", "expectations": "leads.yaml", "key": "lead_id", "target": "converted",
               "candidates": ["linear"], "primary_metric": "lift_at_10"}
    leads = definitions.parse(write_definition(tmp_path, minimal, "leads"))
    assert leads.metrics == ("lift_at_10", "roc_auc", "pr_auc", "log_loss", "brier")
    assert leads.key == ("lead_id",) and leads.candidates["linear"].model == "linear"
    assert leads.retraining.schedule == "0 6 * * 1" and leads.retraining.on_new_data == "always"
    assert (leads.scoring.output, leads.scoring.score, leads.scoring_history) == (
        "ranked_list", "probability", 0)


def test_scoring_defaults_for_a_time_series(tmp_path):
    stock = definitions.parse(write_definition(tmp_path, shipped("stock"), "stock", scoring=None))
    assert (stock.scoring.output, stock.scoring_group, stock.scoring_history, stock.scoring.score) == (
        "latest_per_group", "Ticker", 60, "probability")


# --- the JSON Schema editors use --------------------------------------------------------------

def test_the_committed_schema_is_the_current_one():
    committed = json.loads((USECASES / definitions.SCHEMA_FILE).read_text())
    assert committed == definitions.json_schema(), "regenerate: mlops check --schema > " \
                                                   "pipelines/usecases/usecase.schema.json"


def test_the_schema_accepts_the_shipped_definitions_and_rejects_a_typo():
    jsonschema = pytest.importorskip("jsonschema")
    schema = definitions.json_schema()
    for name in ("stock", "marketing"):
        jsonschema.validate(shipped(name), schema)
    with pytest.raises(jsonschema.ValidationError, match="promotion_margn"):
        jsonschema.validate({**shipped("marketing"), "promotion_margn": 0.01}, schema)
