import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from features.tabular import TabularFeatures, tabular_features


def records() -> pd.DataFrame:
    return pd.DataFrame({
        "id": [101, 102, 103, 104, 105],
        "age": [30.0, np.nan, 50.0, 40.0, 20.0],
        "visits": [1, 2, 3, 4, 5],
        "region": ["north", "south", "north", "east", "south"],
        "label": [0, 1, 0, 1, 1],
    })


def test_keys_and_target_never_become_inputs():
    features = tabular_features(exclude=["id", "label"]).fit(records())
    assert features.numeric_columns_ == ["age", "visits"]
    assert features.categorical_columns_ == ["region"]
    # age, visits, then one column per region.
    assert features.transform(records()).shape == (5, 2 + 3)


def test_output_does_not_depend_on_excluded_columns():
    features = tabular_features(exclude=["id", "label"]).fit(records())
    changed = records().assign(id=[9, 8, 7, 6, 5], label=[1, 1, 1, 1, 1])
    np.testing.assert_array_equal(features.transform(records()), features.transform(changed))


def test_missing_numbers_become_the_training_median():
    features = tabular_features(exclude=["id", "label"]).fit(records())
    out = features.transform(records())
    assert out[1, 0] == pytest.approx(35.0)  # median of 30, 50, 40, 20
    assert np.isfinite(out).all()
    # A column with no value at all in training is filled with 0 rather than NaN.
    empty = records().assign(age=np.nan)
    assert np.isfinite(tabular_features(exclude=["id", "label"]).fit(empty).transform(empty)).all()


def test_unseen_categories_become_zeros_instead_of_failing():
    features = tabular_features(exclude=["id", "label"]).fit(records())
    new = records().iloc[:2].assign(region=["west", "north"])
    out = features.transform(new)
    np.testing.assert_array_equal(out[0, 2:], [0, 0, 0])
    assert out[1, 2:].sum() == 1


def test_categories_are_one_hot_encoded_in_a_stable_order():
    out = tabular_features(exclude=["id", "label"]).fit(records()).transform(records())
    # east, north, south in sorted order.
    np.testing.assert_array_equal(out[:, 2:], [[0, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 0, 1]])


def test_missing_categories_are_a_category_of_their_own():
    frame = records().assign(region=["north", None, "north", "east", None])
    out = tabular_features(exclude=["id", "label"]).fit(frame).transform(frame)
    assert np.isfinite(out).all()
    assert out.shape[1] == 2 + 3


def test_only_numbers_gives_no_encoder():
    frame = records().drop(columns="region")
    features = TabularFeatures(exclude=("id", "label")).fit(frame)
    assert features.encoder_ is None
    assert features.transform(frame).shape == (5, 2)


def test_clone_keeps_parameters():
    features = tabular_features(exclude=["id"], max_categories=7)
    copy = clone(features)
    assert copy.get_params() == {"exclude": ("id",), "max_categories": 7}


def test_transform_before_fit_fails():
    with pytest.raises(Exception, match="not fitted"):
        TabularFeatures().transform(records())
