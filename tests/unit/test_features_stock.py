
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from features.stock import StockFeatures, next_day_direction, next_day_return
from tests.sample_data import sample_csv

PERTURBED_COLUMNS = ["Open", "High", "Low", "Close", "Volume", "Adj Close"]


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return pd.read_csv(sample_csv("stock.csv"))


@pytest.fixture(scope="module")
def features(bars: pd.DataFrame) -> pd.DataFrame:
    return StockFeatures().fit_transform(bars)


def perturb_after(bars: pd.DataFrame, cutoff: str, seed: int) -> pd.DataFrame:
    """The same bars with every price and volume after the cutoff replaced by random values."""
    rng = np.random.default_rng(seed)
    changed = bars.copy()
    future = changed["Date"] > cutoff
    count = int(future.sum())
    for column in PERTURBED_COLUMNS:
        factors = rng.lognormal(0.0, 0.5, count)
        changed.loc[future, column] = (changed.loc[future, column] * factors).astype(changed[column].dtype)
    return changed


def assert_same_up_to(cutoff: str, bars: pd.DataFrame, original: pd.DataFrame, other: pd.DataFrame) -> None:
    known = bars["Date"] <= cutoff
    pd.testing.assert_frame_equal(original[known], other[known], check_exact=True)


def test_output_keeps_index_rows_and_is_finite(bars, features):
    assert features.index.equals(bars.index)
    assert list(features.columns) == list(StockFeatures().fit(bars).get_feature_names_out())
    assert all(dtype == np.float64 for dtype in features.dtypes)
    assert np.isfinite(features.to_numpy()).all()


@pytest.mark.parametrize("cutoff", ["2000-03-03", "2004-08-25", "2008-10-10", "2012-05-21", "2013-02-27"])
def test_changing_the_future_leaves_past_features_unchanged(bars, features, cutoff):
    perturbed = perturb_after(bars, cutoff, seed=len(cutoff) + int(cutoff[:4]))
    assert (perturbed.loc[bars["Date"] > cutoff, "Adj Close"] != bars.loc[bars["Date"] > cutoff,
                                                                          "Adj Close"]).all()
    assert_same_up_to(cutoff, bars, features, StockFeatures().fit_transform(perturbed))


def test_single_ticker_leakage_with_a_window_of_days(bars):
    apple = bars[bars["Ticker"] == "AAPL"]
    cutoff = apple["Date"].iloc[1500]
    transformer = StockFeatures(window=5)
    original = transformer.fit_transform(apple)
    perturbed = transformer.transform(perturb_after(apple, cutoff, seed=7))
    assert_same_up_to(cutoff, apple, original, perturbed)
    changed_rows = (original != perturbed).any(axis=1)
    assert changed_rows[apple["Date"] > cutoff].all()


def test_dropping_the_future_leaves_past_features_unchanged(bars, features):
    cutoff = "2010-06-15"
    known = bars["Date"] <= cutoff
    pd.testing.assert_frame_equal(features[known], StockFeatures().fit_transform(bars[known]),
                                  check_exact=True)


def test_shuffled_input_gives_each_row_the_same_features(bars, features):
    shuffled = bars.sample(frac=1.0, random_state=3)
    result = StockFeatures().fit_transform(shuffled)
    assert result.index.equals(shuffled.index)
    pd.testing.assert_frame_equal(result.loc[bars.index], features, check_exact=True)


def test_row_order_is_restored_even_with_a_duplicated_index(bars, features):
    shuffled = bars.sample(frac=1.0, random_state=11)
    positions = shuffled.index.to_numpy()
    result = StockFeatures().fit_transform(shuffled.set_axis(np.zeros(len(shuffled), dtype=int)))
    assert (result.index == 0).all()
    np.testing.assert_array_equal(result.to_numpy(), features.loc[positions].to_numpy())


def test_tickers_do_not_influence_each_other(bars, features):
    for ticker in ["FB", "GOOG"]:
        rows = bars["Ticker"] == ticker
        alone = StockFeatures().fit_transform(bars[rows])
        pd.testing.assert_frame_equal(alone, features[rows], check_exact=True)


def test_window_stacks_previous_days_oldest_first(bars, features):
    window = 4
    transformer = StockFeatures(window=window).fit(bars)
    stacked = transformer.transform(bars)
    base_count = transformer.n_base_features_
    assert stacked.shape == (len(bars), window * base_count)
    assert base_count == features.shape[1]
    pd.testing.assert_frame_equal(stacked.iloc[:, -base_count:], features, check_exact=True)
    assert list(stacked.columns[:2]) == ["ret_1__lag3", "ret_2__lag3"]

    by_ticker = features.groupby(bars["Ticker"])
    for days_back in range(1, window):
        block = (window - 1 - days_back) * base_count
        expected = by_ticker.shift(days_back).fillna(0.0)
        np.testing.assert_array_equal(stacked.iloc[:, block:block + base_count].to_numpy(),
                                      expected.to_numpy())
    # The reshape a recurrent model will do: the last step of each sequence is today's vector.
    sequences = stacked.to_numpy().reshape(len(bars), window, base_count)
    np.testing.assert_array_equal(sequences[:, -1, :], features.to_numpy())


def test_returns_use_adjusted_close(bars, features):
    apple = bars["Ticker"] == "AAPL"
    log_price = np.log(bars.loc[apple, "Adj Close"])
    expected = (log_price - log_price.shift(5)).fillna(0.0)
    np.testing.assert_allclose(features.loc[apple, "ret_5"], expected, rtol=0, atol=1e-12)


def test_a_split_does_not_look_like_a_crash():
    # A 2-for-1 split on day 3: raw prices halve, the adjusted series (back-adjusted) stays smooth.
    raw_close = np.array([100.0, 101.0, 102.0, 51.5, 52.0])
    split_factor = np.array([0.5, 0.5, 0.5, 1.0, 1.0])
    bars = pd.DataFrame({
        "Ticker": "XYZ",
        "Date": pd.date_range("2020-01-01", periods=5).strftime("%Y-%m-%d"),
        "Open": raw_close * 0.99, "High": raw_close * 1.01, "Low": raw_close * 0.98, "Close": raw_close,
        "Volume": [1000, 1100, 1200, 2400, 2300], "Adj Close": raw_close * split_factor,
    })
    result = StockFeatures().fit_transform(bars)
    gap_on_split_day = 0.99 * 51.5 / 51.0 - 1.0
    assert result.loc[3, "overnight_gap"] == pytest.approx(gap_on_split_day)
    assert result.loc[3, "ret_1"] == pytest.approx(np.log(51.5 / 51.0))
    assert result["hl_range"].to_numpy() == pytest.approx(np.full(5, 0.03))


def test_zero_volume_and_flat_prices_stay_finite():
    bars = pd.DataFrame({
        "Ticker": "FLAT", "Date": pd.date_range("2020-01-01", periods=40).strftime("%Y-%m-%d"),
        "Open": 10.0, "High": 10.0, "Low": 10.0, "Close": 10.0, "Volume": 0, "Adj Close": 10.0,
    })
    result = StockFeatures(window=3).fit_transform(bars)
    assert np.isfinite(result.to_numpy()).all()
    assert (result.to_numpy() == 0.0).all()


def test_parameters_are_sklearn_params_and_fit_learns_nothing(bars):
    transformer = StockFeatures(lags=(1, 3), windows=(10,), window=2)
    assert transformer.get_params()["lags"] == (1, 3)
    copy = clone(transformer)
    early, late = bars[bars["Date"] < "2005-01-01"], bars[bars["Date"] >= "2005-01-01"]
    pd.testing.assert_frame_equal(copy.fit(early).transform(late), transformer.fit_transform(late))
    assert copy.n_base_features_ == 2 + 2 + 8


def test_bad_input_is_refused(bars):
    with pytest.raises(ValueError, match="duplicate bar"):
        StockFeatures().fit_transform(pd.concat([bars.head(3), bars.head(1)]))
    with pytest.raises(ValueError, match="lacks columns"):
        StockFeatures().fit(bars.drop(columns="Adj Close"))
    with pytest.raises(ValueError, match="windows"):
        StockFeatures(windows=(1,)).fit(bars)


def test_next_day_targets_look_one_day_ahead_within_a_ticker(bars):
    shuffled = bars.sample(frac=1.0, random_state=5)
    direction = next_day_direction(shuffled)
    returns = next_day_return(shuffled)
    assert direction.index.equals(shuffled.index) and returns.index.equals(shuffled.index)

    last_rows = shuffled.groupby("Ticker")["Date"].idxmax()
    assert set(direction[direction.isna()].index) == set(last_rows)
    assert set(returns[returns.isna()].index) == set(last_rows)

    apple = bars[bars["Ticker"] == "AAPL"]
    adj_close = apple["Adj Close"]
    expected = np.log(adj_close.shift(-1) / adj_close)
    np.testing.assert_allclose(returns.loc[apple.index], expected, rtol=0, atol=1e-12)
    known = returns.notna()
    assert ((direction[known] == 1.0) == (returns[known] > 0)).all()


def test_next_day_return_is_the_following_rows_one_day_feature(bars, features):
    returns = next_day_return(bars)
    following = features["ret_1"].groupby(bars["Ticker"]).shift(-1)
    known = returns.notna()
    np.testing.assert_allclose(returns[known], following[known], rtol=0, atol=1e-12)
