from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import is_classifier, is_regressor
from sklearn.metrics import roc_auc_score

from features.stock import StockFeatures
from features.tabular import TabularFeatures
from models.evaluation import evaluate
from pipelines.config.definitions import parse
from pipelines.config.errors import UseCaseError
from pipelines.config.usecase import GENERIC_FEATURES, UseCase
from pipelines.nodes.estimators import (
    baseline_factory,
    candidate_factory,
    check_data,
    class_ratio,
    split_plan,
    target_values,
)
from tests.definitions import USECASES, shipped, write_definition


def definition(tmp_path: Path, raw: dict, **changes) -> UseCase:
    """A use case parsed from ``raw`` with ``changes`` applied, written as YAML like a real definition."""
    return parse(write_definition(tmp_path, raw, **changes))


def random_walk_bars(n_days: int = 260, tickers: tuple[str, ...] = ("AAA", "BBB"),
                     seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2022-01-03", periods=n_days).strftime("%Y-%m-%d")
    frames = []
    for ticker in tickers:
        close = 20.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n_days)))
        frames.append(pd.DataFrame({"Ticker": ticker, "Date": dates, "Open": close, "High": close * 1.01,
                                    "Low": close * 0.99, "Close": close,
                                    "Volume": rng.integers(1000, 5000, n_days), "Adj Close": close}))
    return pd.concat(frames, ignore_index=True)


# --- the shipped definitions -----------------------------------------------------------------

def test_shipped_stock_definition():
    spec = parse(USECASES / "stock.yaml")
    assert spec.task == "classification"
    assert spec.target == "features.stock:next_day_direction"
    assert spec.features == "features.stock:StockFeatures"
    assert spec.primary_metric == "roc_auc" and spec.metrics[0] == "roc_auc"
    assert spec.metrics == ("roc_auc", "directional_accuracy", "log_loss")
    assert (spec.split.strategy, spec.split.folds, spec.split.embargo, spec.split.holdout) == (
        "walk_forward", 4, 1, 0.15)
    assert spec.horizon == 1 and spec.promotion_margin == 0.002
    assert spec.baselines == ("always_up", "persistence")
    assert list(spec.candidates) == ["linear", "hist_boosting", "xgboost", "mlp", "gru"]
    gru = spec.candidates["gru"]
    assert (gru.model, gru.params, gru.features) == ("gru", {"window": 10}, {"window": 10})
    assert spec.registered_model == "stock"
    # The target is computed, not a column, so there is no label column to keep out of the inputs.
    assert spec.non_inputs == ()


def test_shipped_marketing_definition():
    spec = parse(USECASES / "marketing.yaml")
    assert spec.task == "classification"
    assert spec.target == "features.marketing:purchase_target"
    assert (spec.split.strategy, spec.split.folds, spec.split.holdout) == ("stratified", "auto", 0.2)
    assert spec.primary_metric == "roc_auc"
    assert spec.metrics == ("roc_auc", "pr_auc", "lift_at_10", "lift_at_20", "capture_at_10",
                            "capture_at_20", "brier")
    assert spec.baselines == ("base_rate",)
    assert list(spec.candidates) == ["linear", "hist_boosting", "xgboost", "mlp"]
    assert spec.non_inputs == ("customer_id", "Purchase")


@pytest.mark.parametrize("name", ["stock", "marketing"])
def test_every_shipped_candidate_and_baseline_builds(name):
    spec = parse(USECASES / f"{name}.yaml")
    for candidate in spec.candidates.values():
        pipeline = candidate_factory(spec, candidate, ratio=15.0)()
        assert [step for step, _ in pipeline.steps] == ["features", "model"]
        assert is_classifier(pipeline.named_steps["model"])
    for baseline in spec.baselines:
        assert baseline_factory(spec, baseline)().steps[-1][0] == "model"


def test_gru_features_and_model_agree_on_the_window():
    spec = parse(USECASES / "stock.yaml")
    pipeline = candidate_factory(spec, spec.candidates["gru"], None)()
    assert isinstance(pipeline.named_steps["features"], StockFeatures)
    assert pipeline.named_steps["features"].window == pipeline.named_steps["model"].window == 10


def test_class_ratio_reaches_xgboost():
    spec = parse(USECASES / "marketing.yaml")
    y = np.array([0, 0, 0, 0, 1, np.nan])
    assert class_ratio(spec, y) == 4.0
    xgboost = spec.candidates["xgboost"]
    pipeline = candidate_factory(spec, xgboost, class_ratio(spec, y))()
    assert pipeline.named_steps["model"].scale_pos_weight == 4.0
    assert class_ratio(spec, np.zeros(5)) is None


# --- switching the task ----------------------------------------------------------------------

def test_task_regression_switches_target_metrics_and_candidates(tmp_path):
    spec = definition(tmp_path, shipped("stock"), task="regression")
    assert spec.task == "regression"
    assert spec.target == "features.stock:next_day_return"
    assert spec.primary_metric == "rmse"
    assert spec.metrics == ("rmse", "mae", "directional_accuracy")
    assert class_ratio(spec, np.array([0.0, 1.0])) is None
    for candidate in spec.candidates.values():
        assert is_regressor(candidate_factory(spec, candidate, None)().named_steps["model"])
    bars = random_walk_bars()
    y = target_values(spec, bars)
    assert np.isnan(y).sum() == 2  # each ticker's last day
    assert not set(np.unique(y[~np.isnan(y)])) <= {0.0, 1.0}


def test_regression_trains_end_to_end_with_persistence(tmp_path):
    spec = definition(tmp_path, shipped("stock"), task="regression")
    bars = random_walk_bars()
    y = target_values(spec, bars)
    plan = split_plan(spec, bars, y)
    persistence = evaluate("persistence", baseline_factory(spec, "persistence"), bars, y, plan, spec.task,
                           list(spec.metrics))
    linear = evaluate("linear", candidate_factory(spec, spec.candidates["linear"], None), bars, y, plan,
                      spec.task, list(spec.metrics))
    for evaluation in (persistence, linear):
        assert not np.isnan(y[evaluation.pooled_positions]).any()
        assert np.isfinite(evaluation.holdout_metrics["rmse"])
    # Persistence predicts today's log return: its scores are the ret_1 feature itself.
    features = StockFeatures().fit_transform(bars)
    np.testing.assert_allclose(persistence.pooled_scores,
                               features["ret_1"].to_numpy()[persistence.pooled_positions])


# --- the split ------------------------------------------------------------------------------

def test_an_embargo_as_long_as_the_horizon_is_accepted(tmp_path):
    spec = definition(tmp_path, shipped("stock"), horizon=3,
                      split={"strategy": "walk_forward", "embargo": 3})
    assert (spec.horizon, spec.split.embargo) == (3, 3)
    # Without an explicit embargo the horizon is used.
    assert definition(tmp_path, shipped("stock"), horizon=2, split={}).split.embargo == 2


def test_too_little_data_for_the_split_is_a_use_case_error():
    spec = parse(USECASES / "stock.yaml")
    bars = random_walk_bars(n_days=6)
    with pytest.raises(UseCaseError, match="too few"):
        split_plan(spec, bars, target_values(spec, bars))


# --- selecting candidates ----------------------------------------------------------------------

def test_with_candidates_keeps_the_requested_ones_in_the_requested_order():
    spec = parse(USECASES / "stock.yaml")
    chosen = spec.with_candidates(["gru", "linear"])
    assert list(chosen.candidates) == ["gru", "linear"]
    assert chosen.candidates["gru"].params == {"window": 10}
    assert chosen.metrics == spec.metrics and chosen.split == spec.split
    assert len(spec.candidates) == 5  # the original is unchanged


def test_with_candidates_rejects_an_undefined_one():
    spec = parse(USECASES / "marketing.yaml")
    with pytest.raises(UseCaseError, match="marketing has no candidate gru, svm"):
        spec.with_candidates(["linear", "gru", "svm"])


# --- a new use case with the fewest possible fields ----------------------------------------------

MINIMAL = {
    "dataset": "leads.csv",
    "expectations": "leads.yaml",
    "key": "lead_id",
    "target": "converted",
    "candidates": ["linear"],
}


def leads(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    source = rng.choice(["web", "fair", "referral"], size=n)
    pages = rng.poisson(4, size=n).astype(float)
    logit = -3.0 + 0.4 * pages + np.where(source == "referral", 1.5, 0.0)
    converted = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    pages[rng.uniform(size=n) < 0.05] = np.nan
    return pd.DataFrame({"lead_id": np.arange(10_000, 10_000 + n), "source": source, "pages": pages,
                         "converted": converted})


def test_minimal_use_case_gets_the_defaults(tmp_path):
    spec = definition(tmp_path, MINIMAL, name="leads")
    assert spec.task == "classification"
    assert spec.features == GENERIC_FEATURES
    assert spec.split.strategy == "stratified"
    assert spec.metrics == ("roc_auc", "pr_auc", "log_loss", "brier")
    assert spec.baselines == ("base_rate",)
    assert spec.non_inputs == ("converted",)
    assert spec.registered_model == spec.experiment == "leads"


def test_minimal_use_case_trains_end_to_end_on_generic_features(tmp_path):
    spec = definition(tmp_path, MINIMAL, name="leads")
    frame = leads()
    y = target_values(spec, frame)
    plan = split_plan(spec, frame, y)
    ratio = class_ratio(spec, y[plan.final.train])
    evaluation = evaluate("linear", candidate_factory(spec, spec.candidates["linear"], ratio), frame, y, plan,
                          spec.task, list(spec.metrics))
    assert len(evaluation.folds) == len(plan.folds) == 5
    assert sorted(evaluation.pooled_positions) == list(range(len(frame)))
    assert roc_auc_score(y[evaluation.pooled_positions], evaluation.pooled_scores) > 0.7
    features = evaluation.model.named_steps["features"]
    assert isinstance(features, TabularFeatures)
    assert features.numeric_columns_ == ["pages"] and features.categorical_columns_ == ["source"]
    baseline = evaluate("base_rate", baseline_factory(spec, "base_rate"), frame, y, plan, spec.task,
                        list(spec.metrics))
    assert evaluation.holdout_metrics["roc_auc"] > baseline.holdout_metrics["roc_auc"]


def test_target_column_must_exist_and_be_binary(tmp_path):
    spec = definition(tmp_path, MINIMAL, name="leads")
    with pytest.raises(UseCaseError, match="leads.yaml: target: column 'converted' is not in leads.csv"):
        target_values(spec, leads().drop(columns="converted"))
    with pytest.raises(UseCaseError, match="values 0 and 1"):
        target_values(spec, leads().assign(converted=2))


def test_data_checks_run_before_validation_and_leave_bad_rows_to_it(tmp_path):
    spec = definition(tmp_path, MINIMAL, name="leads")
    check_data(spec, leads())
    with pytest.raises(UseCaseError, match="target: column 'converted' is not in leads.csv"):
        check_data(spec, leads().drop(columns="converted"))
    few = leads(n=40)
    with pytest.raises(UseCaseError, match="leads.yaml: split: the rarest class has"):
        check_data(spec, few.assign(converted=[1, 1] + [0] * 38))
    stock = parse(USECASES / "stock.yaml")
    # Text in a price column is validation's to report, with examples; the check stays out of its way.
    check_data(stock, random_walk_bars().astype({"Close": object}).assign(Close="abc"))
