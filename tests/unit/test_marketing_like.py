"""The generator of marketing-like customers the scale benchmark trains on."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pandas as pd
import pytest

from features.marketing import ATTRIBUTE_COLUMNS, KEY_COLUMN, TARGET_COLUMN
from tests.sample_data import REPO, sample_csv

ROWS = 20_000


def _generator():
    spec = importlib.util.spec_from_file_location("marketing_like", REPO / "benchmarks" / "marketing_like.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def real() -> pd.DataFrame:
    return pd.read_csv(sample_csv("marketing.csv"))


@pytest.fixture(scope="module")
def generated(real) -> pd.DataFrame:
    return _generator().marketing_like(ROWS, seed=3, real=real)


def test_same_columns_and_only_codes_the_sample_uses(real, generated):
    assert list(generated.columns) == list(real.columns)
    for column in ATTRIBUTE_COLUMNS:
        assert generated[column].dtype == np.int64
        assert set(generated[column]) <= set(real[column]), column
    assert set(generated[TARGET_COLUMN]) == {"Yes", "No"}


def test_a_subtype_stays_within_its_main_type(real, generated):
    allowed = set(zip(real["MOSTYPE"], real["MOSHOOFD"], strict=True))
    assert set(zip(generated["MOSTYPE"], generated["MOSHOOFD"], strict=True)) <= allowed


def test_keys_are_unique_new_and_in_the_sample_format(real, generated):
    keys = generated[KEY_COLUMN]
    assert keys.is_unique
    assert not set(keys) & set(real[KEY_COLUMN])
    assert all(re.fullmatch(r"C[0-9a-f]{12}", key) for key in keys)


def test_no_customer_repeats_a_real_one_or_another_generated_one(real, generated):
    attributes = generated[ATTRIBUTE_COLUMNS]
    assert not attributes.duplicated().any()
    both = pd.concat([real[ATTRIBUTE_COLUMNS].drop_duplicates(), attributes])
    assert not both.duplicated().any()


def test_buyers_at_the_sample_base_rate(real, generated):
    real_rate = real[TARGET_COLUMN].eq("Yes").mean()
    rate = generated[TARGET_COLUMN].eq("Yes").mean()
    # Three binomial standard errors of ROWS draws.
    assert abs(rate - real_rate) < 3 * np.sqrt(real_rate * (1 - real_rate) / ROWS)


def test_the_label_stays_learnable_from_the_attributes(generated):
    # Buyers hold more car policies in the sample; the generated rows keep that difference.
    buyers = generated[TARGET_COLUMN].eq("Yes")
    assert generated.loc[buyers, "PPERSAUT"].mean() > generated.loc[~buyers, "PPERSAUT"].mean() + 0.5


def test_the_same_seed_gives_the_same_rows_and_another_seed_others(real, generated):
    generator = _generator()
    pd.testing.assert_frame_equal(generator.marketing_like(ROWS, seed=3, real=real), generated)
    other = generator.marketing_like(ROWS, seed=4, real=real)
    assert not other[ATTRIBUTE_COLUMNS].equals(generated[ATTRIBUTE_COLUMNS])
