"""Which rows train and which rows test: walk-forward folds for time series, stratified folds otherwise.

The number of folds may be ``"auto"``: every fold is a full fit of every candidate, so the more
training rows there are, the fewer folds a comparison needs to be precise and the more each costs.
``auto_folds`` holds the rule.

A plan holds positions (not labels) into one frame. Besides its training and test rows, each fold
names the rows to *score*: for time series that is every row up to the end of the test block, so
that features looking back over past days see the same history at evaluation as in production,
and the test rows are then picked out of the scores. Scoring earlier rows is not leakage: the
model was fitted on training rows only, and every feature looks backwards.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

AUTO = "auto"
# Training rows up to which "auto" keeps the strategy's usual number of folds, and up to which it
# keeps three; beyond, one validation split. At 50,000 rows a fold's test block already holds
# thousands of rows of the rarer class, so more folds mostly multiply the fits.
ALL_FOLDS_UP_TO = 50_000
THREE_FOLDS_UP_TO = 200_000
# The share of the training rows that a single stratified validation split tests on: what one of
# five folds would.
VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class Fold:
    train: np.ndarray
    test: np.ndarray
    scored: np.ndarray
    """Rows passed to ``predict``; ``test`` is a subset, and ``scored`` is in frame order."""

    def test_within_scored(self) -> np.ndarray:
        """Where the test rows sit inside the scored rows."""
        return np.searchsorted(self.scored, self.test)


@dataclass(frozen=True)
class SplitPlan:
    folds: list[Fold]
    """Cross-validation inside the training rows, used to compare candidates."""
    final: Fold
    """All training rows against the holdout that candidates, champion and baselines share."""
    description: str


def auto_folds(training_rows: int, usual: int) -> int:
    """How many folds ``"auto"`` means for ``training_rows``: ``usual`` for small data, then three, then
    one validation split."""
    if training_rows <= ALL_FOLDS_UP_TO:
        return usual
    if training_rows <= THREE_FOLDS_UP_TO:
        return min(3, usual)
    return 1


def _resolved(n_splits: int | str, training_rows: int, usual: int) -> tuple[int, str]:
    """The number of folds and how the description names where it came from."""
    if n_splits == AUTO:
        return auto_folds(training_rows, usual), f" (folds: auto, for {training_rows} training rows)"
    if isinstance(n_splits, str):
        raise ValueError(f"folds must be a number or '{AUTO}', got {n_splits!r}")
    return n_splits, ""


def _fold(train: np.ndarray, test: np.ndarray, scored: np.ndarray | None = None) -> Fold:
    train, test = np.sort(train), np.sort(test)
    return Fold(train, test, test if scored is None else np.sort(scored))


def walk_forward(
    dates: pd.Series,
    labelled: np.ndarray,
    n_splits: int | str = 4,
    embargo: int = 1,
    holdout: float = 0.15,
    min_train: float = 0.5,
) -> SplitPlan:
    """Expanding-window folds over the distinct dates, the most recent ``holdout`` share held out.

    Each fold trains on every date before its test block except the last ``embargo`` dates, so no
    training label can be computed from prices inside the test block. The first ``min_train``
    share of the pre-holdout dates only ever trains. ``labelled`` marks rows with a target; the
    others (a ticker's last day) are never trained or tested on, but stay scorable as history.
    ``n_splits="auto"`` chooses by the labelled rows before the holdout (``auto_folds``; usually 4).
    """
    day = pd.to_datetime(dates).to_numpy()
    labelled = np.asarray(labelled, dtype=bool)
    distinct = np.unique(day)
    n_dates = len(distinct)
    if not 0 < holdout < 1:
        raise ValueError("walk_forward needs n_splits >= 1, embargo >= 0 and shares in (0, 1)")
    holdout_start = n_dates - max(1, int(round(n_dates * holdout)))
    before_holdout = int(np.count_nonzero(labelled & (day < distinct[holdout_start]))) if n_dates else 0
    n_splits, chosen = _resolved(n_splits, before_holdout, usual=4)
    if n_splits < 1 or embargo < 0 or not 0 < holdout < 1 or not 0 < min_train < 1:
        raise ValueError("walk_forward needs n_splits >= 1, embargo >= 0 and shares in (0, 1)")
    first_test = int(round(holdout_start * min_train))
    bounds = np.linspace(first_test, holdout_start, n_splits + 1).round().astype(int)
    if first_test - embargo < 1 or np.any(np.diff(bounds) < 1):
        raise ValueError(f"{n_dates} distinct dates are too few for {n_splits} walk-forward folds "
                         f"with an embargo of {embargo} and a {holdout:.0%} holdout")
    # Position of each row's date among the distinct dates.
    rank = np.searchsorted(distinct, day)
    positions = np.arange(len(day))

    def block(start: int, stop: int) -> np.ndarray:
        return positions[(rank >= start) & (rank < stop) & labelled]

    folds = [
        _fold(block(0, start - embargo), block(start, stop), positions[rank < stop])
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    final = _fold(block(0, holdout_start - embargo), block(holdout_start, n_dates), positions)
    description = (f"walk-forward: {n_splits} expanding folds{chosen}, embargo {embargo} day(s); "
                   f"holdout: last {n_dates - holdout_start} of {n_dates} dates (from "
                   f"{pd.Timestamp(distinct[holdout_start]).date()})")
    return SplitPlan(folds, final, description)


def stable_share(keys: pd.DataFrame, salt: str = "") -> np.ndarray:
    """A number in [0, 1) per row that depends only on the row's key values (and ``salt``).

    A row therefore lands in the same partition in every cycle, however many rows arrive later,
    so the holdout a champion was judged on never leaks into a later challenger's training rows.
    A different ``salt`` draws a different, equally stable holdout.
    """
    text = keys.astype(str)
    joined = salt + "\x1f" + text.iloc[:, 0] if salt else text.iloc[:, 0]
    for column in list(text.columns)[1:]:
        joined = joined + "\x1f" + text[column]
    digests = [hashlib.sha256(value.encode()).digest()[:8] for value in joined]
    return np.array([int.from_bytes(d, "big") / 2**64 for d in digests])


def stratified(
    y: np.ndarray,
    keys: pd.DataFrame,
    n_splits: int | str = 5,
    holdout: float = 0.2,
    random_state: int = 0,
    salt: str = "",
) -> SplitPlan:
    """Stratified folds over the training rows; the holdout is picked by a stable hash of the key.

    ``n_splits=1`` is one stratified validation split that tests on ``VALIDATION_SHARE`` of the
    training rows; ``"auto"`` chooses by the number of training rows (``auto_folds``; usually 5).
    """
    y = np.asarray(y)
    if not 0 < holdout < 1:
        raise ValueError("stratified needs n_splits >= 1 and a holdout share in (0, 1)")
    in_holdout = stable_share(keys, salt) < holdout
    train_rows = np.flatnonzero(~in_holdout)
    holdout_rows = np.flatnonzero(in_holdout)
    n_splits, chosen = _resolved(n_splits, len(train_rows), usual=5)
    if n_splits < 1:
        raise ValueError("stratified needs n_splits >= 1 and a holdout share in (0, 1)")
    needed = max(n_splits, 2)
    classes, counts = np.unique(y[train_rows], return_counts=True)
    if len(classes) < 2 or counts.min() < needed:
        raise ValueError(f"the rarest class has {counts.min() if len(counts) else 0} training rows; "
                         f"{n_splits} stratified folds need at least {needed}")
    if n_splits == 1:
        splitter = StratifiedShuffleSplit(n_splits=1, test_size=VALIDATION_SHARE, random_state=random_state)
        shape = f"1 validation split of {VALIDATION_SHARE:.0%} of the training rows{chosen}"
    else:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        shape = f"{n_splits} folds{chosen}"
    folds = [
        _fold(train_rows[fit], train_rows[test])
        for fit, test in splitter.split(np.zeros(len(train_rows)), y[train_rows])
    ]
    final = _fold(train_rows, holdout_rows)
    description = (f"stratified: {shape}; holdout: {len(holdout_rows)} of {len(y)} rows "
                   f"({holdout:.0%}, chosen by key so that it is the same in every cycle)")
    return SplitPlan(folds, final, description)
