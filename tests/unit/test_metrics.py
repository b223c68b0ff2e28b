import math

import numpy as np
import pytest

from models.metrics import METRICS, compute, expected_positives_in_top, get_metric

CLASSIFICATION = [name for task, name in METRICS if task == "classification"]


def labels(n: int = 200, rate: float = 0.1, seed: int = 0) -> np.ndarray:
    y = np.zeros(n)
    y[np.random.default_rng(seed).choice(n, int(n * rate), replace=False)] = 1
    return y


@pytest.mark.parametrize("n", [50, 203, 1000])
def test_constant_scores_give_lift_one_and_capture_equal_to_the_share(n):
    """Ties at the cut-off count fractionally, so a model without a ranking gets no credit for row order."""
    y = labels(n, 0.13, seed=n)
    scores = np.full(n, 0.3)
    for order in (y, np.sort(y), np.sort(y)[::-1]):
        for share in (0.1, 0.2):
            percent = int(share * 100)
            assert get_metric("classification", f"lift_at_{percent}")(order, scores) == pytest.approx(
                1.0, rel=1e-12)
            assert get_metric("classification", f"capture_at_{percent}")(order, scores) == pytest.approx(
                share, rel=1e-12)
        # Any share, including ones that cut between rows.
        for share in (0.15, 0.333, 0.5):
            assert expected_positives_in_top(order, scores, share) == pytest.approx(
                order.mean() * share * n, rel=1e-12)


def test_perfect_ranking_caps_lift_and_capture():
    """With 10% positives ranked first, the top 10% holds them all and the top 20% half positives."""
    y = labels(200, 0.1)
    scores = y + np.random.default_rng(1).uniform(0, 0.5, len(y))
    values = compute("classification", ["lift_at_10", "lift_at_20", "capture_at_10", "capture_at_20",
                                        "roc_auc", "pr_auc"], y, scores)
    assert values == pytest.approx({"lift_at_10": 10.0, "lift_at_20": 5.0, "capture_at_10": 1.0,
                                    "capture_at_20": 1.0, "roc_auc": 1.0, "pr_auc": 1.0})


def test_ties_straddling_the_cut_off_count_their_average_rate():
    """Top 2 of 10 rows: one clear winner, then four tied rows holding two positives: 1 + 0.5."""
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert expected_positives_in_top(y, scores, 0.2) == pytest.approx(1.5)
    assert get_metric("classification", "capture_at_20")(y, scores) == pytest.approx(0.5)
    assert get_metric("classification", "lift_at_20")(y, scores) == pytest.approx(1.5 / 2 / 0.3)


def test_lift_and_capture_without_positives_are_nan():
    y, scores = np.zeros(20), np.linspace(0, 1, 20)
    assert math.isnan(get_metric("classification", "lift_at_10")(y, scores))
    assert math.isnan(get_metric("classification", "capture_at_20")(y, scores))


def test_single_class_auc_is_nan_not_an_error():
    """A fold with one class has no ranking to judge; NaN says so and mean over folds skips it."""
    scores = np.linspace(0, 1, 10)
    assert math.isnan(get_metric("classification", "roc_auc")(np.ones(10), scores))
    assert math.isnan(get_metric("classification", "roc_auc")(np.zeros(10), scores))
    assert math.isnan(get_metric("classification", "pr_auc")(np.zeros(10), scores))
    # Log loss and Brier score are still defined on one class.
    assert np.isfinite(get_metric("classification", "log_loss")(np.ones(10), scores))
    assert np.isfinite(get_metric("classification", "brier")(np.ones(10), scores))


def test_empty_input_gives_nan_for_every_metric():
    for (task, name), metric in METRICS.items():
        assert math.isnan(metric(np.array([]), np.array([]))), (task, name)


def test_log_loss_of_a_confident_miss_is_large_but_finite():
    value = get_metric("classification", "log_loss")(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert 10 < value < 20


def test_directional_accuracy_thresholds_at_one_half_for_classification():
    y = np.array([1, 0, 1, 0], dtype=float)
    accuracy = get_metric("classification", "directional_accuracy")
    assert accuracy(y, np.array([0.5, 0.49, 0.2, 0.8])) == 0.5
    assert accuracy(y, np.array([0.6, 0.4, 0.9, 0.1])) == 1.0


def test_regression_metrics():
    y = np.array([0.02, -0.01, 0.03, -0.04])
    prediction = np.array([0.01, 0.01, 0.01, 0.01])
    values = compute("regression", ["rmse", "mae", "directional_accuracy"], y, prediction)
    errors = y - prediction
    assert values["rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)))
    assert values["mae"] == pytest.approx(np.mean(np.abs(errors)))
    # Signs agree on the two up moves only.
    assert values["directional_accuracy"] == 0.5
    assert compute("regression", ["rmse", "mae"], y, y) == {"rmse": 0.0, "mae": 0.0}


def test_greater_is_better_follows_the_metric():
    assert get_metric("classification", "roc_auc").greater_is_better
    assert get_metric("classification", "lift_at_10").greater_is_better
    assert not get_metric("classification", "log_loss").greater_is_better
    assert not get_metric("classification", "brier").greater_is_better
    assert not get_metric("regression", "rmse").greater_is_better
    assert get_metric("regression", "directional_accuracy").greater_is_better


def test_better_needs_more_than_the_margin_in_the_right_direction():
    auc, rmse = get_metric("classification", "roc_auc"), get_metric("regression", "rmse")
    assert auc.better(0.71, 0.70)
    assert not auc.better(0.70, 0.70)
    assert not auc.better(0.69, 0.70)
    assert auc.better(0.71, 0.70, margin=0.005)
    assert not auc.better(0.704, 0.70, margin=0.005)
    assert rmse.better(0.9, 1.0)
    assert not rmse.better(1.1, 1.0)
    assert rmse.better(0.9, 1.0, margin=0.05)
    assert not rmse.better(0.97, 1.0, margin=0.05)


def test_nan_never_wins_and_always_loses():
    auc, rmse = get_metric("classification", "roc_auc"), get_metric("regression", "rmse")
    for metric in (auc, rmse):
        assert not metric.better(float("nan"), 0.5)
        assert not metric.better(float("nan"), float("nan"))
        assert metric.better(0.5, float("nan"))


def test_unknown_metric_names_the_known_ones_for_the_task():
    with pytest.raises(ValueError, match=r"unknown regression metric 'roc_auc'; available: "
                                         r"directional_accuracy, mae, rmse"):
        get_metric("regression", "roc_auc")


def test_every_classification_metric_accepts_probabilities():
    y = labels(100, 0.2, seed=3)
    scores = np.random.default_rng(3).uniform(size=len(y))
    values = compute("classification", CLASSIFICATION, y, scores)
    assert set(values) == set(CLASSIFICATION)
    assert all(np.isfinite(v) for v in values.values())
