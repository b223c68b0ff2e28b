"""The promotion gate on real models: noise is never promoted, real skill is.

The gate's intervals come from ``pipelines.nodes.uncertainty`` and its policy from
``models.promotion``, exactly as a cycle uses them (``pipelines.nodes.training.promotion``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification

from models.families import build_candidate
from models.metrics import get_metric
from models.promotion import Evidence, decide
from models.uncertainty import Interval
from pipelines.config.definitions import parse
from pipelines.nodes.training import ChampionScore, choose_best, evaluate_baselines, prepare, promotion, train
from pipelines.nodes.uncertainty import weigh
from tests.sample_data import sample_csv

REPO = Path(__file__).resolve().parents[2]
MARKETING = parse(REPO / "pipelines" / "usecases" / "marketing.yaml")
AUC = get_metric("classification", "roc_auc")
RMSE = get_metric("regression", "rmse")


def interval(low: float, high: float) -> Interval:
    return Interval((low + high) / 2, low, high, 0.95, "paired bootstrap")


# --- the policy -------------------------------------------------------------------------------

def test_a_first_champion_needs_the_whole_interval_above_the_baseline():
    sure = Evidence(0.95, vs_baseline=interval(0.01, 0.06))
    unsure = Evidence(0.95, vs_baseline=interval(-0.01, 0.04))
    assert decide(AUC, 0.0, 0.54, None, None, {"base_rate": 0.5}, evidence=sure).promote
    refused = decide(AUC, 0.0, 0.515, None, None, {"base_rate": 0.5}, evidence=unsure)
    assert not refused.promote
    assert "not surely better than the naive baseline base_rate" in refused.reason
    assert "includes 0" in refused.reason


def test_the_champion_must_be_beaten_by_the_margin_at_the_lower_end():
    evidence = Evidence(0.95, vs_baseline=interval(0.2, 0.3), vs_champion=interval(0.001, 0.07))
    refused = decide(AUC, 0.002, 0.76, 0.73, "1", {"base_rate": 0.5}, evidence=evidence)
    assert not refused.promote and "not surely better than champion v1" in refused.reason
    evidence = Evidence(0.95, vs_baseline=interval(0.2, 0.3), vs_champion=interval(0.003, 0.07))
    assert decide(AUC, 0.002, 0.76, 0.73, "1", {"base_rate": 0.5}, evidence=evidence).promote


def test_gains_are_oriented_so_that_lower_errors_are_gains():
    evidence = Evidence(0.95, vs_baseline=interval(0.0005, 0.002), vs_champion=interval(0.0012, 0.003))
    assert decide(RMSE, 0.001, 0.0150, 0.0170, "4", {"persistence": 0.0180}, evidence=evidence).promote


def test_intervals_that_cannot_be_estimated_leave_the_decision_to_a_person():
    evidence = Evidence(0.95, error="too few holdout rows of a class")
    decision = decide(AUC, 0.0, 0.9, None, None, {"base_rate": 0.5}, evidence=evidence)
    assert not decision.promote and "promote by hand" in decision.reason
    assert decision.tags()["promotion.interval_error"] == "too few holdout rows of a class"


def test_the_intervals_are_recorded_with_the_decision():
    evidence = Evidence(0.9, vs_baseline=interval(0.1, 0.3), vs_champion=None)
    tags = decide(AUC, 0.0, 0.7, None, None, {"base_rate": 0.5}, evidence=evidence).tags()
    assert tags["promotion.confidence"] == "0.9"
    assert tags["promotion.gain_vs_baseline_low"] == "0.1"
    assert tags["promotion.gain_vs_baseline"].startswith("+0.2000 [+0.1000, +0.3000] (95%")
    assert tags["promotion.gain_vs_champion"] == "none"


# --- on real models ---------------------------------------------------------------------------

def scored_holdout(seed: int, train_rows: np.ndarray, holdout_rows: np.ndarray, X: np.ndarray,
                   y: np.ndarray) -> np.ndarray:
    model = build_candidate("xgboost", "classification", {"n_estimators": 60, "subsample": 0.6,
                                                          "colsample_bytree": 0.5}, random_state=seed)
    model.fit(X[train_rows], y[train_rows])
    return model.predict_proba(X[holdout_rows])[:, 1]


def test_a_reseeded_copy_of_the_champion_is_not_promoted_on_a_small_holdout():
    """The same model with another seed differs by noise alone; on 300 holdout rows, noise can look
    like a win of more than the margin, and the gate must see through it for every seed."""
    X, y = make_classification(n_samples=2300, n_features=20, n_informative=5, flip_y=0.1,
                               weights=[0.8], random_state=0)
    train_rows, holdout_rows = np.arange(2000), np.arange(2000, 2300)
    holdout_y = y[holdout_rows].astype(float)
    champion = scored_holdout(0, train_rows, holdout_rows, X, y)
    constant = np.full(len(holdout_rows), y[train_rows].mean())
    margin, point_wins = 0.002, 0
    for seed in range(1, 9):
        copy = scored_holdout(seed, train_rows, holdout_rows, X, y)
        evidence = weigh(MARKETING, AUC, holdout_y, None, copy, {"base_rate": (0.5, constant)}, champion)
        decision = decide(AUC, margin, AUC(holdout_y, copy), AUC(holdout_y, champion), "1",
                          {"base_rate": 0.5}, evidence=evidence)
        point_wins += AUC(holdout_y, copy) > AUC(holdout_y, champion) + margin
        assert evidence.vs_baseline.beats(0.0), "the copy is far better than the base rate"
        assert not decision.promote, f"seed {seed}: {decision.reason}"
    assert point_wins >= 1, "no reseeded copy beat the champion on points: the test shows nothing"


@pytest.fixture(scope="module")
def marketing_frame() -> pd.DataFrame:
    path = REPO / "data" / "marketing.csv"
    if not path.is_file():
        path = sample_csv("marketing.csv")
    return pd.read_csv(path, dtype={name: str for name in MARKETING.string_columns}, skipinitialspace=True)


@pytest.mark.slow
@pytest.mark.parametrize("draw", range(5))
def test_no_first_champion_on_permuted_labels(marketing_frame, draw):
    """With the purchase labels permuted, whatever the cross-validation picks is not made champion."""
    use_case = MARKETING.without_tuning().with_candidates(["linear", "hist_boosting", "xgboost"])
    labels = marketing_frame["Purchase"].to_numpy()
    frame = marketing_frame.assign(Purchase=np.random.default_rng(200 + draw).permutation(labels))
    data = prepare(use_case, frame)
    trained = [train(use_case, name, data, progress=lambda _: None) for name in use_case.candidates]
    assert all(outcome.error is None for outcome in trained)
    best = choose_best(use_case, trained)
    decision = promotion(use_case, best, evaluate_baselines(use_case, data), ChampionScore(), data)
    assert not decision.promote, decision.reason
    assert decision.evidence.vs_baseline is not None and decision.evidence.vs_baseline.low < 0


@pytest.mark.slow
def test_the_real_labels_make_a_first_champion(marketing_frame):
    """The same gate on the true labels promotes: the refusals above are not a gate that never opens."""
    use_case = MARKETING.without_tuning().with_candidates(["linear", "hist_boosting"])
    data = prepare(use_case, marketing_frame)
    trained = [train(use_case, name, data, progress=lambda _: None) for name in use_case.candidates]
    decision = promotion(use_case, choose_best(use_case, trained), evaluate_baselines(use_case, data),
                         ChampionScore(), data)
    assert decision.promote, decision.reason
    assert decision.evidence.vs_baseline.low > 0.05
