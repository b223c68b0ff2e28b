
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from features.marketing import (
    ATTRIBUTE_COLUMNS,
    KEY_COLUMN,
    NOMINAL_COLUMNS,
    ORDINAL_COLUMNS,
    TARGET_COLUMN,
    marketing_preprocessor,
    purchase_target,
)
from tests.sample_data import sample_csv

# 41 customer subtypes + 10 main types one-hot, the other 83 attributes as they are.
EXPECTED_WIDTH = 41 + 10 + 83


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return pd.read_csv(sample_csv("marketing.csv"))


def test_column_lists_match_the_data(customers):
    assert len(ATTRIBUTE_COLUMNS) == 85 == len(set(ATTRIBUTE_COLUMNS))
    assert [KEY_COLUMN, *ATTRIBUTE_COLUMNS, TARGET_COLUMN] == list(customers.columns)
    assert set(NOMINAL_COLUMNS) | set(ORDINAL_COLUMNS) == set(ATTRIBUTE_COLUMNS)


def test_output_is_numeric_without_key_or_target(customers):
    preprocessor = marketing_preprocessor()
    matrix = preprocessor.fit_transform(customers)
    names = list(preprocessor.get_feature_names_out())
    assert matrix.shape == (len(customers), EXPECTED_WIDTH) == (len(customers), len(names))
    assert np.issubdtype(matrix.dtype, np.number) and np.isfinite(matrix).all()
    assert not any(KEY_COLUMN in name or TARGET_COLUMN in name for name in names)
    assert "MOSTYPE_33" in names and "MOSHOOFD_10" in names and "MGEMLEEF" in names
    assert "MOSTYPE" not in names


def test_ordinal_columns_pass_through_unchanged(customers):
    frame = marketing_preprocessor().set_output(transform="pandas").fit_transform(customers)
    pd.testing.assert_frame_equal(frame[ORDINAL_COLUMNS], customers[ORDINAL_COLUMNS], check_dtype=False)
    one_hot = frame[[name for name in frame.columns if name.startswith("MOSTYPE_")]]
    assert (one_hot.sum(axis=1) == 1).all()


def test_extra_columns_are_dropped_and_the_key_is_not_needed_at_prediction(customers):
    preprocessor = marketing_preprocessor().fit(customers)
    expected = preprocessor.transform(customers)
    reordered = customers[ATTRIBUTE_COLUMNS[::-1]].assign(campaign="spring", score=1.5)
    np.testing.assert_array_equal(preprocessor.transform(reordered), expected)


def test_unknown_codes_become_all_zero_instead_of_failing(customers):
    preprocessor = marketing_preprocessor().set_output(transform="pandas").fit(customers.head(200))
    unseen = customers.head(3).copy()
    unseen["MOSTYPE"] = [99, 0, -1]
    unseen["MOSHOOFD"] = 11
    frame = preprocessor.transform(unseen)
    assert frame.shape == (3, EXPECTED_WIDTH)
    encoded = [name for name in frame.columns if name.startswith(("MOSTYPE_", "MOSHOOFD_"))]
    assert (frame[encoded] == 0).all().all()


def test_width_does_not_depend_on_which_codes_the_sample_holds(customers):
    one_type = customers[customers["MOSHOOFD"] == customers["MOSHOOFD"].iloc[0]]
    assert marketing_preprocessor().fit_transform(one_type).shape == (len(one_type), EXPECTED_WIDTH)


def test_scaled_variant_centres_ordinal_columns(customers):
    preprocessor = clone(marketing_preprocessor(scale_ordinal=True)).set_output(transform="pandas")
    frame = preprocessor.fit_transform(customers)
    assert frame.shape == (len(customers), EXPECTED_WIDTH)
    # float32 features: centred to within float32 rounding.
    np.testing.assert_allclose(frame[ORDINAL_COLUMNS].mean(), 0.0, atol=1e-6)


def test_the_matrix_is_float32_whatever_integer_type_the_codes_arrive_in(customers):
    attributes = customers.astype({name: "int8" for name in ATTRIBUTE_COLUMNS})
    wide = marketing_preprocessor().fit(customers).transform(customers)
    narrow = marketing_preprocessor().fit(attributes).transform(attributes)
    assert wide.dtype == narrow.dtype == np.float32
    np.testing.assert_array_equal(wide, narrow)


def test_purchase_target_maps_yes_and_no(customers):
    target = purchase_target(customers)
    assert target.index.equals(customers.index)
    assert set(target.unique()) == {0, 1}
    assert target.sum() == (customers[TARGET_COLUMN] == "Yes").sum()
    with pytest.raises(ValueError, match="other than Yes/No"):
        purchase_target(pd.DataFrame({TARGET_COLUMN: ["Yes", "maybe"]}))


def test_without_one_hot_the_type_codes_are_the_first_two_columns(customers):
    matrix = marketing_preprocessor(one_hot=False).fit(customers).transform(customers)
    assert matrix.shape == (len(customers), len(ATTRIBUTE_COLUMNS))
    np.testing.assert_array_equal(matrix[:, :2], customers[NOMINAL_COLUMNS].to_numpy(dtype=np.float32))
    np.testing.assert_array_equal(matrix[:, 2:], customers[ORDINAL_COLUMNS].to_numpy(dtype=np.float32))
