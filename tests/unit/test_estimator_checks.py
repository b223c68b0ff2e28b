"""The neural estimators against scikit-learn's own estimator checks, so they work in sklearn tooling.

No check is skipped or expected to fail. The GRUs run the checks with ``window=1`` because the checks
build their own data with 1, 3 or 5 columns, and a longer window needs the width to split into equal
days. That limit comes from the input layout, not the API, and a wider window does not link rows:
each row already carries its own days. The last test checks that for a real window.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from models.neural import GRUClassifier, GRURegressor, MLPClassifier, MLPRegressor

# Enough training to pass the checks' score floors (accuracy 0.83, R² 0.5) with a wide margin,
# while each fit still takes a fraction of a second.
FAST = {"max_epochs": 20, "batch_size": 32, "learning_rate": 1e-2, "device": "cpu"}


@parametrize_with_checks([
    MLPClassifier(hidden_sizes=(8,), **FAST),
    MLPRegressor(hidden_sizes=(8,), **FAST),
    GRUClassifier(window=1, hidden_size=4, **FAST),
    GRURegressor(window=1, hidden_size=4, **FAST),
])
def test_sklearn_estimator_checks(estimator: BaseEstimator, check) -> None:
    check(estimator)


@pytest.mark.parametrize("model", [GRUClassifier(window=3, hidden_size=4, **FAST),
                                   GRURegressor(window=3, hidden_size=4, **FAST)],
                         ids=["GRUClassifier", "GRURegressor"])
def test_windowed_gru_predicts_each_row_on_its_own(model: BaseEstimator) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6))
    y = (X[:, 0] > 0).astype(int) if is_classifier(model) else X[:, 0]
    fitted = clone(model).fit(X, y)
    outputs = fitted.predict_proba if is_classifier(fitted) else fitted.predict
    order = rng.permutation(len(X))
    np.testing.assert_allclose(outputs(X[order]), outputs(X)[order], atol=1e-9)
    np.testing.assert_allclose(outputs(X[:7]), outputs(X)[:7], atol=1e-9)
