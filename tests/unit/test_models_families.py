import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor

from models.families import BASE_REQUIREMENTS, FAMILIES, build_candidate

# Small settings keep the whole matrix quick; 'gru' uses window=2 over the 6 columns below.
FAST = {
    "linear": {},
    "hist_boosting": {"max_iter": 20},
    "xgboost": {"n_estimators": 20},
    "mlp": {"max_epochs": 3, "hidden_sizes": (8,), "device": "cpu"},
    "gru": {"max_epochs": 3, "window": 2, "hidden_size": 4, "device": "cpu"},
    # Chunks smaller than the frame: the Dask matrix is built from several pieces.
    "xgboost_dask": {"n_estimators": 20, "chunk_rows": 64},
}


def frame(n: int = 200):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(n, 6)) * 10.0, columns=[f"f{i}" for i in range(6)])
    signal = X["f0"] - X["f5"]
    return X, (signal > 0).astype(int).to_numpy(), signal.to_numpy()


def test_every_family_has_fast_settings_and_declares_what_it_needs():
    assert set(FAMILIES) == set(FAST)
    assert FAMILIES["linear"].preload == FAMILIES["linear"].requirements == ()
    assert FAMILIES["xgboost"].preload == ("xgboost",)
    assert FAMILIES["xgboost"].requirements == ("xgboost-cpu",)
    assert FAMILIES["mlp"].requirements == FAMILIES["gru"].requirements == ("torch",)
    assert FAMILIES["xgboost_dask"].requirements == ("xgboost-cpu",)
    assert "scikit-learn" in BASE_REQUIREMENTS and "cloudpickle" in BASE_REQUIREMENTS


def test_the_declared_preload_modules_and_requirements_exist():
    import importlib
    from importlib import metadata

    for family in FAMILIES.values():
        for module in family.preload:
            importlib.import_module(module)
        for distribution in (*BASE_REQUIREMENTS, *family.requirements):
            assert metadata.version(distribution)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_classification_candidates_fit_and_predict(name):
    X, y, _ = frame()
    model = build_candidate(name, "classification", FAST[name], random_state=1)
    assert is_classifier(model)
    model = clone(model).fit(X, y)
    assert model.predict(X).shape == (len(X),)
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_regression_candidates_fit_and_predict(name):
    X, _, y = frame()
    model = build_candidate(name, "regression", FAST[name])
    assert is_regressor(model)
    prediction = model.fit(X, y).predict(X)
    assert prediction.shape == (len(X),) and np.isfinite(prediction).all()


def test_params_override_defaults_and_random_state_is_passed_on():
    model = build_candidate("xgboost", "classification", {"scale_pos_weight": 4.0}, random_state=7)
    assert model.get_params()["scale_pos_weight"] == 4.0
    assert model.get_params()["random_state"] == 7
    assert build_candidate("mlp", "regression", random_state=3).random_state == 3
    assert build_candidate("gru", "classification").class_weight == "balanced"


def test_builds_are_independent():
    params = {"max_epochs": 3}
    first = build_candidate("mlp", "classification", params)
    first.set_params(max_epochs=9)
    assert build_candidate("mlp", "classification", params).max_epochs == 3
    assert params == {"max_epochs": 3}


def test_unknown_name_lists_the_available_families():
    with pytest.raises(ValueError, match="unknown model 'svm'") as error:
        build_candidate("svm", "classification")
    for name in FAMILIES:
        assert name in str(error.value)


def test_unknown_task_is_rejected():
    with pytest.raises(ValueError, match="classification, regression"):
        build_candidate("linear", "ranking")


def test_a_renamed_family_says_its_new_name():
    with pytest.raises(ValueError, match="unknown model 'forest' \\(renamed 'hist_boosting'\\)"):
        build_candidate("forest", "classification")


def test_an_error_in_a_dask_fit_on_a_worker_surfaces_as_itself():
    """Inside a task on a worker, a training error must not be mistaken for "no worker here"."""
    from distributed import Client, LocalCluster

    from models.dask_xgboost import _client

    def fit_that_fails() -> None:
        with _client(None):
            raise ValueError("bad training data")

    cluster = LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)
    with cluster, Client(cluster) as client, pytest.raises(ValueError, match="bad training data"):
        client.submit(fit_that_fails).result(timeout=60)
