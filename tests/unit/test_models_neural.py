import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from models.neural import GRUClassifier, GRURegressor, MLPClassifier, MLPRegressor

FAST = {"max_epochs": 15, "batch_size": 64, "device": "cpu"}
ESTIMATORS = [
    MLPClassifier(hidden_sizes=(16,), **FAST),
    MLPRegressor(hidden_sizes=(16,), **FAST),
    GRUClassifier(window=2, hidden_size=8, **FAST),
    GRURegressor(window=2, hidden_size=8, **FAST),
]
IDS = [type(model).__name__ for model in ESTIMATORS]


def data(n: int = 240, n_features: int = 6, seed: int = 0):
    """Raw-scale features with a linear signal, so standardisation has real work to do."""
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=50.0, scale=20.0, size=(n, n_features))
    signal = (X[:, 0] - 50.0) / 20.0 - (X[:, -1] - 50.0) / 20.0
    return X, (signal > 0).astype(int), signal * 10.0 + 3.0


def target_for(model, y_class, y_reg):
    return y_class if hasattr(model, "predict_proba") else y_reg


@pytest.mark.parametrize("model", ESTIMATORS, ids=IDS)
def test_clone_and_params_round_trip(model):
    params = model.get_params()
    copy = clone(model)
    assert copy.get_params() == params
    copy.set_params(dropout=0.3, max_epochs=3)
    assert copy.get_params()["dropout"] == 0.3 and model.get_params()["dropout"] == params["dropout"]


@pytest.mark.parametrize("model", ESTIMATORS, ids=IDS)
def test_fit_predict_shapes_and_determinism(model):
    X, y_class, y_reg = data()
    y = target_for(model, y_class, y_reg)
    first = clone(model).fit(pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), y)
    second = clone(model).fit(pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])]), y)
    frame = pd.DataFrame(X[:25], columns=[f"f{i}" for i in range(X.shape[1])])
    prediction = first.predict(frame)
    assert isinstance(prediction, np.ndarray) and prediction.shape == (25,)
    np.testing.assert_array_equal(prediction, second.predict(frame))
    assert first.mean_.shape == (X.shape[1],) and first.n_features_in_ == X.shape[1]
    if hasattr(first, "predict_proba"):
        proba = first.predict_proba(frame)
        assert proba.shape == (25, 2)
        assert ((proba >= 0) & (proba <= 1)).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0)
        np.testing.assert_array_equal(proba, second.predict_proba(frame))
        assert set(np.unique(prediction)) <= set(first.classes_)


@pytest.mark.parametrize("model", ESTIMATORS, ids=IDS)
def test_pickle_round_trip_predicts_the_same(model):
    X, y_class, y_reg = data()
    fitted = clone(model).set_params(max_epochs=3).fit(X, target_for(model, y_class, y_reg))
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))


def test_a_different_seed_gives_different_weights():
    X, y, _ = data()
    a = MLPClassifier(hidden_sizes=(16,), random_state=0, **FAST).fit(X, y)
    b = MLPClassifier(hidden_sizes=(16,), random_state=1, **FAST).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_mlp_learns_a_separable_problem_with_string_labels():
    X, y, _ = data(n=400)
    labels = np.where(y == 1, "up", "down")
    model = MLPClassifier(hidden_sizes=(16,), max_epochs=40, batch_size=32, learning_rate=1e-2,
                          device="cpu").fit(X, labels)
    assert list(model.classes_) == ["down", "up"]
    assert (model.predict(X) == labels).mean() > 0.9


def test_gru_learns_a_separable_problem():
    X, y, _ = data(n=400)
    model = GRUClassifier(window=3, hidden_size=8, max_epochs=40, batch_size=32, learning_rate=1e-2,
                          device="cpu").fit(X, y)
    assert (model.predict(X) == y).mean() > 0.9
    assert model.n_base_features_ == 2


def test_regressor_fits_a_raw_scale_target():
    X, _, y = data(n=400)
    model = MLPRegressor(hidden_sizes=(16,), max_epochs=40, batch_size=32, learning_rate=1e-2,
                         device="cpu").fit(X, y + 1000.0)
    assert model.score(X, y + 1000.0) > 0.9


def test_early_stopping_stops_on_noise_and_keeps_the_best_epoch():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(300, 8)), rng.integers(0, 2, size=300)
    model = MLPClassifier(hidden_sizes=(32,), max_epochs=200, patience=3, batch_size=32, learning_rate=1e-2,
                          validation_fraction=0.3, device="cpu").fit(X, y)
    assert model.n_epochs_ < 200
    assert model.best_epoch_ == model.n_epochs_ - 3
    assert model.best_validation_loss_ == pytest.approx(min(model.validation_loss_curve_))


def test_validation_slice_is_the_last_rows():
    X, y, _ = data()
    # Shifting only the tail changes nothing the scaler sees, because only training rows are used.
    shifted = X.copy()
    shifted[-24:] += 1000.0
    a = MLPClassifier(validation_fraction=0.1, **FAST).fit(X, y)
    b = MLPClassifier(validation_fraction=0.1, **FAST).fit(shifted, y)
    np.testing.assert_array_equal(a.mean_, b.mean_)


def test_without_a_validation_slice_it_trains_every_epoch():
    X, y, _ = data()
    model = MLPClassifier(validation_fraction=0.0, max_epochs=4, device="cpu").fit(X, y)
    assert model.n_epochs_ == 4 and model.validation_loss_curve_ == []


def test_balanced_class_weight_raises_minority_recall():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(400, 4))
    y = ((X[:, 0] + rng.normal(scale=1.0, size=400)) > 1.6).astype(int)
    settings = {"hidden_sizes": (8,), "max_epochs": 10, "device": "cpu"}
    plain = MLPClassifier(**settings).fit(X, y)
    balanced = MLPClassifier(class_weight="balanced", **settings).fit(X, y)
    assert balanced.predict(X)[y == 1].mean() > plain.predict(X)[y == 1].mean()


def test_gru_reshapes_oldest_block_first():
    model = GRURegressor(window=3)
    X = np.arange(12, dtype=np.float32).reshape(2, 6)
    blocks = model._shape_inputs(X)
    assert blocks.shape == (2, 3, 2)
    np.testing.assert_array_equal(blocks[0, 0], [0, 1])
    np.testing.assert_array_equal(blocks[0, -1], [4, 5])


@pytest.mark.parametrize("window", [4, 0, 2.5])
def test_gru_rejects_a_bad_window(window):
    X, y, _ = data(n_features=6)
    with pytest.raises(ValueError, match="window"):
        GRUClassifier(window=window, **FAST).fit(X, y)


def test_predict_rejects_a_different_feature_count():
    X, y, _ = data()
    model = MLPClassifier(**{**FAST, "max_epochs": 2}).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :4])


def test_classifier_rejects_more_than_two_classes_and_bad_class_weight():
    X, _, _ = data()
    with pytest.raises(ValueError, match="binary"):
        MLPClassifier(**FAST).fit(X, np.arange(len(X)) % 3)
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight="weird", **FAST).fit(X, np.arange(len(X)) % 2)


def test_auto_batches_grow_with_the_rows_so_an_epoch_takes_a_bounded_number_of_steps():
    from models.torch_base import AUTO_STEPS_PER_EPOCH, rows_per_step

    assert rows_per_step("auto", 5_000) == 256
    assert rows_per_step("auto", 576_000) == 2250
    assert -(-576_000 // rows_per_step("auto", 576_000)) <= AUTO_STEPS_PER_EPOCH
    assert rows_per_step(64, 576_000) == 64


def test_max_samples_caps_the_epochs_on_large_data_only():
    from models.torch_base import epoch_limit

    assert epoch_limit(100, 10_000_000, 5_000) == 100
    assert epoch_limit(100, 10_000_000, 576_000) == 18
    assert epoch_limit(100, 10, 576_000) == 1
    assert epoch_limit(100, None, 576_000) == 100


def test_batch_size_and_max_samples_are_checked():
    X, y = np.zeros((20, 2), dtype=np.float32), np.arange(20) % 2
    for settings in ({"batch_size": 0}, {"batch_size": "big"}, {"max_samples": 0}):
        with pytest.raises(ValueError, match="must be positive"):
            MLPClassifier(**{**FAST, **settings}).fit(X, y)
