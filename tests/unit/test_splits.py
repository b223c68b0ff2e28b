import numpy as np
import pandas as pd
import pytest

from models.splits import auto_folds, stable_share, stratified, walk_forward


def panel(n_dates: int = 120, tickers: tuple[str, ...] = ("A", "B", "C"), seed: int = 0) -> pd.DataFrame:
    """Daily rows for a few tickers, shuffled, with each ticker's last day unlabelled."""
    dates = pd.bdate_range("2020-01-01", periods=n_dates)
    frame = pd.DataFrame([(t, d) for t in tickers for d in dates], columns=["Ticker", "Date"])
    frame["Date"] = frame["Date"].dt.strftime("%Y-%m-%d")
    frame = frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame["labelled"] = frame["Date"] != frame["Date"].max()
    return frame


def ranks(frame: pd.DataFrame) -> np.ndarray:
    """Each row's date as a position among the distinct dates."""
    day = pd.to_datetime(frame["Date"])
    return np.searchsorted(np.unique(day), day)


@pytest.mark.parametrize("embargo", [0, 1, 3])
@pytest.mark.parametrize("n_splits", [1, 4])
def test_training_dates_end_embargo_dates_before_each_test_block(embargo, n_splits):
    """Every training date lies before the test block's first date minus the embargo."""
    frame = panel()
    rank = ranks(frame)
    plan = walk_forward(frame["Date"], frame["labelled"], n_splits=n_splits, embargo=embargo)
    assert len(plan.folds) == n_splits
    for fold in [*plan.folds, plan.final]:
        test_start = rank[fold.test].min()
        assert rank[fold.train].max() < test_start - embargo
        # Nothing closer than that is wasted either: the expanding window reaches the embargo.
        assert rank[fold.train].max() == test_start - embargo - 1


def test_test_blocks_are_contiguous_ordered_disjoint_and_before_the_holdout():
    frame = panel()
    rank = ranks(frame)
    plan = walk_forward(frame["Date"], frame["labelled"], n_splits=4, embargo=1, holdout=0.15)
    blocks = [np.unique(rank[fold.test]) for fold in plan.folds]
    for block in blocks:
        assert np.array_equal(block, np.arange(block[0], block[-1] + 1))
    for earlier, later in zip(blocks, blocks[1:], strict=False):
        assert earlier[-1] + 1 == later[0]
    holdout_dates = np.unique(rank[plan.final.test])
    assert blocks[-1][-1] + 1 == holdout_dates[0]
    tests = np.concatenate([fold.test for fold in plan.folds])
    assert len(np.unique(tests)) == len(tests)
    assert not set(tests) & set(plan.final.test)


def test_holdout_is_the_latest_share_of_dates():
    frame = panel(n_dates=100)
    rank = ranks(frame)
    plan = walk_forward(frame["Date"], frame["labelled"], n_splits=4, holdout=0.2)
    assert sorted(np.unique(rank[plan.final.test])) == list(range(80, 99))  # the last date is unlabelled
    assert set(plan.final.train) | set(plan.final.test) <= set(np.flatnonzero(frame["labelled"]))
    assert "holdout: last 20 of 100 dates" in plan.description


def test_unlabelled_rows_never_train_or_test_but_are_scored():
    frame = panel()
    unlabelled = set(np.flatnonzero(~frame["labelled"]))
    # Some unlabelled rows in the middle of the history as well (missing targets).
    middle = frame["Date"] == sorted(frame["Date"].unique())[70]
    frame.loc[middle, "labelled"] = False
    unlabelled |= set(np.flatnonzero(middle))
    plan = walk_forward(frame["Date"], frame["labelled"], n_splits=4, embargo=1)
    for fold in [*plan.folds, plan.final]:
        assert not unlabelled & set(fold.train)
        assert not unlabelled & set(fold.test)
    assert unlabelled <= set(plan.final.scored)
    assert set(np.flatnonzero(middle)) <= set(plan.folds[-1].scored)


def test_scored_rows_are_every_row_up_to_the_end_of_the_test_block():
    """Backward-looking features need the whole history before each test row, unlabelled rows included."""
    frame = panel()
    rank = ranks(frame)
    plan = walk_forward(frame["Date"], frame["labelled"], n_splits=4, embargo=2)
    for fold in [*plan.folds, plan.final]:
        end = rank[fold.test].max()
        assert set(np.flatnonzero(rank <= end)) <= set(fold.scored)
        assert np.array_equal(fold.scored[fold.test_within_scored()], fold.test)
    for fold in plan.folds:
        # ...and nothing after it, which the fold's model has no business seeing.
        assert np.array_equal(fold.scored, np.flatnonzero(rank <= rank[fold.test].max()))
    # The final fit scores the whole frame, the unlabelled last day included.
    assert np.array_equal(plan.final.scored, np.arange(len(frame)))


def test_positions_are_sorted_and_index_the_frame_as_given():
    frame = panel(seed=5)
    plan = walk_forward(frame["Date"], frame["labelled"])
    for fold in [*plan.folds, plan.final]:
        for rows in (fold.train, fold.test, fold.scored):
            assert np.all(np.diff(rows) > 0)
    # The same dates in a different row order give the same (ticker, date) partition.
    other = panel(seed=9)
    other_plan = walk_forward(other["Date"], other["labelled"])

    def members(f: pd.DataFrame, rows: np.ndarray) -> set:
        return set(map(tuple, f.iloc[rows][["Ticker", "Date"]].to_numpy()))

    for fold, other_fold in zip([*plan.folds, plan.final], [*other_plan.folds, other_plan.final],
                                strict=True):
        assert members(frame, fold.train) == members(other, other_fold.train)
        assert members(frame, fold.test) == members(other, other_fold.test)


@pytest.mark.parametrize(("n_dates", "n_splits", "embargo"), [(5, 4, 1), (12, 8, 1), (20, 2, 10)])
def test_too_few_dates_raise(n_dates, n_splits, embargo):
    frame = panel(n_dates=n_dates)
    with pytest.raises(ValueError, match="too few"):
        walk_forward(frame["Date"], frame["labelled"], n_splits=n_splits, embargo=embargo)


def test_invalid_settings_raise():
    frame = panel()
    for settings in ({"n_splits": 0}, {"embargo": -1}, {"holdout": 1.0}, {"min_train": 0.0}):
        with pytest.raises(ValueError, match="walk_forward needs"):
            walk_forward(frame["Date"], frame["labelled"], **settings)


# --- stratified ------------------------------------------------------------------------------

def customers(n: int = 1000, rate: float = 0.1, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    keys = pd.DataFrame({"customer_id": [f"c{i:05d}" for i in rng.permutation(n * 3)[:n]]})
    y = (rng.uniform(size=n) < rate).astype(int)
    return y, keys


def test_stratified_holdout_and_training_rows_partition_the_rows():
    y, keys = customers()
    plan = stratified(y, keys, n_splits=5, holdout=0.2)
    assert not set(plan.final.train) & set(plan.final.test)
    assert sorted([*plan.final.train, *plan.final.test]) == list(range(len(y)))
    assert 0.15 < len(plan.final.test) / len(y) < 0.25
    for fold in plan.folds:
        assert set(fold.train) | set(fold.test) == set(plan.final.train)
        assert not set(fold.train) & set(fold.test)
        assert not set(fold.test) & set(plan.final.test)
        assert np.array_equal(fold.scored, fold.test)
    tests = np.concatenate([fold.test for fold in plan.folds])
    assert sorted(tests) == sorted(plan.final.train)


def test_stratified_folds_keep_the_class_balance():
    y, keys = customers(rate=0.06)
    plan = stratified(y, keys, n_splits=5)
    positives = [int(y[fold.test].sum()) for fold in plan.folds]
    assert max(positives) - min(positives) <= 1
    assert sum(positives) == int(y[plan.final.train].sum())


def test_stratified_holdout_depends_only_on_the_keys():
    """Appending rows or reordering them never moves an existing customer between holdout and training."""
    y, keys = customers(1000)
    plan = stratified(y, keys)
    held_out = set(keys["customer_id"].iloc[plan.final.test])

    more_y, more_keys = customers(400, seed=1)
    more_keys["customer_id"] = "new" + more_keys["customer_id"]
    grown_keys = pd.concat([keys, more_keys], ignore_index=True).sample(frac=1.0, random_state=3)
    grown_y = np.concatenate([y, more_y])[grown_keys.index]
    grown_keys = grown_keys.reset_index(drop=True)
    grown = stratified(grown_y, grown_keys)
    grown_held_out = set(grown_keys["customer_id"].iloc[grown.final.test])
    assert grown_held_out & set(keys["customer_id"]) == held_out
    assert not set(grown_keys["customer_id"].iloc[grown.final.train]) & held_out


def test_stable_share_is_uniform_and_uses_every_key_column():
    keys = pd.DataFrame({"a": np.arange(5000) % 50, "b": np.arange(5000) // 50})
    shares = stable_share(keys)
    assert shares.min() >= 0 and shares.max() < 1
    assert abs(np.mean(shares < 0.2) - 0.2) < 0.03
    assert len(np.unique(shares)) == len(keys)
    assert np.array_equal(stable_share(keys.iloc[::-1]), shares[::-1])


def test_stratified_needs_enough_of_the_rarest_class():
    y, keys = customers(100)
    y[:] = 0
    y[:3] = 1
    with pytest.raises(ValueError, match="rarest class"):
        stratified(y, keys, n_splits=5)
    with pytest.raises(ValueError, match="n_splits >= 1"):
        stratified(y, keys, n_splits=0)


def test_stable_share_hashes_the_key_columns_joined_by_a_separator():
    """The holdout of every existing dataset depends on this exact text; it must never change."""
    import hashlib

    keys = pd.DataFrame({"Ticker": ["AAPL", "IBM"], "Date": ["2024-01-02", "2024-01-03"]})
    expected = [int.from_bytes(hashlib.sha256(f"{t}\x1f{d}".encode()).digest()[:8], "big") / 2**64
                for t, d in zip(keys["Ticker"], keys["Date"], strict=True)]
    assert stable_share(keys).tolist() == expected


# --- how many folds "auto" means ------------------------------------------------------------

def test_auto_folds_shrink_as_the_training_rows_grow():
    assert [auto_folds(rows, 5) for rows in (4_000, 50_000, 50_001, 200_000, 200_001, 800_000)] == [
        5, 5, 3, 3, 1, 1]
    assert auto_folds(100_000, 2) == 2


def test_one_stratified_validation_split_tests_on_a_fifth_of_the_training_rows():
    y, keys = customers(2000, rate=0.06)
    plan = stratified(y, keys, n_splits=1)
    (fold,) = plan.folds
    assert not set(fold.train) & set(fold.test)
    assert set(fold.train) | set(fold.test) == set(plan.final.train)
    assert abs(len(fold.test) / len(plan.final.train) - 0.2) < 0.01
    assert abs(y[fold.test].mean() - y[plan.final.train].mean()) < 0.01
    assert "1 validation split of 20% of the training rows" in plan.description


def test_auto_keeps_five_folds_on_small_data_and_says_so():
    y, keys = customers(2000)
    plan = stratified(y, keys, n_splits="auto")
    assert len(plan.folds) == 5
    assert "5 folds (folds: auto, for" in plan.description


def test_auto_walk_forward_keeps_four_folds_on_small_data():
    frame = panel()
    plan = walk_forward(frame["Date"], frame["labelled"], n_splits="auto")
    assert len(plan.folds) == 4
    assert "walk-forward: 4 expanding folds (folds: auto" in plan.description
