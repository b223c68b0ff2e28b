import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from models.evaluation import evaluate, evaluate_fitted, positive_scores
from models.splits import stratified, walk_forward

METRICS = ["roc_auc", "log_loss", "lift_at_10"]


def customers(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    y = (frame["x1"] + 0.5 * rng.normal(size=n) > 1.0).astype(float).to_numpy()
    return frame, y


def daily(n_dates: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Two series over the same dates; the last date has no target (NaN) like a ticker's last day."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-01", periods=n_dates).strftime("%Y-%m-%d")
    frame = pd.DataFrame({"Date": np.tile(dates, 2), "x": rng.normal(size=2 * n_dates)})
    y = 2.0 * frame["x"].to_numpy() + rng.normal(scale=0.1, size=len(frame))
    y[frame["Date"].to_numpy() == dates[-1]] = np.nan
    return frame, y


class OnX(LinearRegression):
    """Ordinary least squares on the ``x`` column of a frame that also holds the date."""

    def fit(self, X, y):
        return super().fit(X[["x"]], y)

    def predict(self, X):
        return super().predict(X[["x"]])


def test_stratified_evaluation_scores_every_row_exactly_once():
    frame, y = customers()
    keys = pd.DataFrame({"id": np.arange(len(frame))})
    plan = stratified(y, keys, n_splits=4, holdout=0.2)
    evaluation = evaluate("logistic", LogisticRegression, frame, y, plan, "classification", METRICS)
    assert len(evaluation.folds) == 4
    assert sorted(evaluation.pooled_positions) == list(range(len(frame)))
    assert len(evaluation.pooled_scores) == len(frame)
    # Pooled scores are the fold and holdout scores in the same order as their positions.
    np.testing.assert_array_equal(evaluation.pooled_scores[-len(plan.final.test):], evaluation.holdout.scores)
    assert set(evaluation.cv_metrics) == set(evaluation.holdout_metrics) == set(METRICS)
    assert evaluation.cv_metrics["roc_auc"] > 0.85
    assert evaluation.holdout_metrics["roc_auc"] > 0.85
    assert evaluation.cv_std["roc_auc"] >= 0
    assert evaluation.fit_seconds >= 0


def test_the_returned_model_is_fitted_on_all_training_rows():
    frame, y = customers()
    plan = stratified(y, pd.DataFrame({"id": np.arange(len(frame))}), n_splits=3)
    evaluation = evaluate("logistic", LogisticRegression, frame, y, plan, "classification", METRICS)
    reference = LogisticRegression().fit(frame.iloc[plan.final.train], y[plan.final.train])
    np.testing.assert_allclose(evaluation.model.coef_, reference.coef_)
    np.testing.assert_allclose(evaluation.holdout.scores,
                               reference.predict_proba(frame.iloc[plan.final.test])[:, 1])


def test_walk_forward_evaluation_pools_folds_and_holdout_once_each():
    frame, y = daily()
    plan = walk_forward(frame["Date"], ~np.isnan(y), n_splits=3, embargo=1)
    messages: list[str] = []
    evaluation = evaluate("ols", OnX, frame, y, plan, "regression", ["rmse", "mae"], progress=messages.append)
    assert len(evaluation.folds) == 3
    expected = np.concatenate([*(fold.test for fold in plan.folds), plan.final.test])
    np.testing.assert_array_equal(evaluation.pooled_positions, expected)
    assert len(np.unique(evaluation.pooled_positions)) == len(expected)
    assert not np.isnan(y[evaluation.pooled_positions]).any()
    np.testing.assert_allclose(evaluation.pooled_scores, 2.0 * frame["x"].to_numpy()[expected], atol=0.1)
    assert evaluation.holdout_metrics["rmse"] < 0.2
    assert len(messages) == 4 and "final fit" in messages[-1]


def test_scores_on_scored_rows_are_picked_out_at_the_test_positions():
    """The model scores the whole history up to the test block; the result keeps only the test rows."""
    frame, y = daily()
    plan = walk_forward(frame["Date"], ~np.isnan(y), n_splits=2)
    evaluation = evaluate("ols", OnX, frame, y, plan, "regression", ["rmse"])
    for fold, result in zip(plan.folds, evaluation.folds, strict=True):
        assert len(fold.scored) > len(fold.test)
        assert len(result.scores) == len(fold.test)


def test_metrics_undefined_in_a_fold_are_skipped_in_the_mean():
    frame, y = customers()
    plan = stratified(y, pd.DataFrame({"id": np.arange(len(frame))}), n_splits=3)
    evaluation = evaluate("logistic", LogisticRegression, frame, y, plan, "classification", METRICS)
    evaluation.folds[0].metrics["roc_auc"] = float("nan")
    assert evaluation.cv_metrics["roc_auc"] == pytest.approx(
        np.mean([f.metrics["roc_auc"] for f in evaluation.folds[1:]]))
    for fold in evaluation.folds:
        fold.metrics["roc_auc"] = float("nan")
    assert math.isnan(evaluation.cv_metrics["roc_auc"])


def test_evaluate_fitted_scores_the_holdout_without_refitting():
    frame, y = customers()
    plan = stratified(y, pd.DataFrame({"id": np.arange(len(frame))}), n_splits=3)
    champion = LogisticRegression().fit(frame.iloc[:100], y[:100])
    coefficients = champion.coef_.copy()
    evaluation = evaluate_fitted("champion", champion, frame, y, plan, "classification", METRICS)
    assert evaluation.model is champion
    np.testing.assert_array_equal(champion.coef_, coefficients)
    assert evaluation.folds == [] and evaluation.cv_metrics == {}
    assert evaluation.pooled_positions.size == 0
    np.testing.assert_allclose(evaluation.holdout.scores,
                               champion.predict_proba(frame.iloc[plan.final.test])[:, 1])
    assert set(evaluation.holdout_metrics) == set(METRICS)
    assert evaluation.holdout.fit_seconds == 0.0


def test_positive_scores_follow_the_position_of_class_one():
    frame, y = customers()
    model = LogisticRegression().fit(frame, y)
    model.classes_ = model.classes_[::-1]  # as if the classes were listed the other way round
    np.testing.assert_allclose(positive_scores(model, frame, "classification"),
                               LogisticRegression().fit(frame, y).predict_proba(frame)[:, 0])
