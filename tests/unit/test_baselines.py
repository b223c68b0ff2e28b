import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier

from models.baselines import BASELINES, NEEDS_FEATURES, AlwaysUp, Persistence, build_baseline


def moves(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A feature frame whose next move repeats today's sign 70% of the time."""
    rng = np.random.default_rng(seed)
    today = rng.normal(size=n)
    repeat = rng.uniform(size=n) < 0.7
    y = np.where(repeat, today > 0, today <= 0).astype(int)
    return pd.DataFrame({"ret_1": today, "other": rng.normal(size=n)}), y


def test_always_up_predicts_up_with_the_training_up_rate():
    X, y = moves()
    model = AlwaysUp().fit(X, y)
    assert is_classifier(model)
    assert np.array_equal(model.predict(X.iloc[:5]), np.ones(5))
    proba = model.predict_proba(X.iloc[:5])
    np.testing.assert_allclose(proba[:, 1], y.mean())
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(model.classes_) == [0, 1]


def test_always_up_without_training_rows_says_one_half():
    assert AlwaysUp().fit(np.empty((0, 1)), np.array([])).up_rate_ == 0.5


def test_always_up_must_be_fitted_before_probabilities():
    with pytest.raises(Exception, match="not fitted"):
        AlwaysUp().predict_proba(np.zeros((2, 1)))


def test_persistence_classifier_uses_the_rate_after_up_and_after_down_days():
    X, y = moves()
    model = Persistence().fit(X, y)
    up = X["ret_1"].to_numpy() > 0
    assert model.up_after_up_ == pytest.approx(y[up].mean())
    assert model.up_after_down_ == pytest.approx(y[~up].mean())
    proba = model.predict_proba(X)[:, 1]
    assert np.all(proba[up] == model.up_after_up_) and np.all(proba[~up] == model.up_after_down_)
    assert np.array_equal(model.predict(X), up.astype(int))
    assert model.up_after_up_ > 0.6 > 0.4 > model.up_after_down_


def test_persistence_with_only_up_days_falls_back_to_the_overall_rate():
    X = pd.DataFrame({"ret_1": [0.1, 0.2, 0.3]})
    model = Persistence().fit(X, np.array([1, 0, 1]))
    assert model.up_after_down_ == pytest.approx(2 / 3)


def test_persistence_regressor_repeats_today_and_has_no_probabilities():
    X, _ = moves()
    model = build_baseline("persistence", "regression").fit(X, X["ret_1"].to_numpy())
    np.testing.assert_array_equal(model.predict(X), X["ret_1"].to_numpy())
    with pytest.raises(AttributeError):
        model.predict_proba(X)


def test_persistence_needs_its_column_by_name():
    with pytest.raises(ValueError, match="'ret_1'"):
        Persistence().fit(np.zeros((3, 2)), np.array([0, 1, 0]))
    with pytest.raises(ValueError, match="'ret_5'"):
        Persistence(column="ret_5").fit(pd.DataFrame({"ret_1": [0.1]}), np.array([1]))


def test_base_rate_gives_the_training_share_or_mean():
    X, y = moves()
    classifier = build_baseline("base_rate", "classification").fit(X, y)
    np.testing.assert_allclose(classifier.predict_proba(X)[:, 1], y.mean())
    regressor = build_baseline("base_rate", "regression").fit(X, X["other"])
    np.testing.assert_allclose(regressor.predict(X), X["other"].mean())


def test_always_up_for_regression_is_the_mean_move():
    X, _ = moves()
    target = X["other"].to_numpy() + 0.5
    np.testing.assert_allclose(build_baseline("always_up", "regression").fit(X, target).predict(X),
                               target.mean())


@pytest.mark.parametrize("name", sorted(BASELINES))
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_every_baseline_builds_clones_and_fits(name, task):
    X, y = moves()
    target = y if task == "classification" else X["ret_1"].to_numpy()
    model = clone(build_baseline(name, task)).fit(X, target)
    assert model.predict(X).shape == (len(X),)
    if task == "classification":
        proba = model.predict_proba(X)
        assert proba.shape == (len(X), 2) and list(model.classes_) == [0, 1]


def test_only_persistence_needs_features():
    assert {"persistence"} == NEEDS_FEATURES


def test_unknown_baseline_names_the_known_ones():
    expected = "unknown baseline 'coin'; available: always_up, base_rate, persistence"
    with pytest.raises(ValueError, match=expected):
        build_baseline("coin", "classification")
