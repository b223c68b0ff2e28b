"""A reasonable default for a new tabular use case: numbers as they are, text as one-hot categories."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted


class TabularFeatures(BaseEstimator, TransformerMixin):
    """Numeric columns pass through (missing values become the training median); other columns
    are one-hot encoded over the categories seen in training, unseen ones becoming all zeros. The
    matrix is float32: half the memory of float64, and what tree and neural models compute in.

    ``exclude`` names columns that must never become inputs, such as keys and the target.
    """

    def __init__(self, exclude: Sequence[str] = (), max_categories: int = 50) -> None:
        self.exclude = exclude
        self.max_categories = max_categories

    def fit(self, frame: pd.DataFrame, y: object = None) -> TabularFeatures:
        columns = [c for c in frame.columns if c not in set(self.exclude)]
        numeric = frame[columns].select_dtypes(include="number").columns
        self.numeric_columns_ = list(numeric)
        self.categorical_columns_ = [c for c in columns if c not in set(numeric)]
        self.medians_ = frame[self.numeric_columns_].median().fillna(0.0)
        self.encoder_ = None
        if self.categorical_columns_:
            self.encoder_ = OneHotEncoder(handle_unknown="infrequent_if_exist", sparse_output=False,
                                          max_categories=self.max_categories, dtype=np.float32)
            self.encoder_.fit(frame[self.categorical_columns_].astype(str))
        return self

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "numeric_columns_")
        numbers = frame[self.numeric_columns_].astype(np.float32).fillna(self.medians_.astype(np.float32))
        parts = [numbers.to_numpy(dtype=np.float32)]
        if self.encoder_ is not None:
            parts.append(self.encoder_.transform(frame[self.categorical_columns_].astype(str)))
        return np.hstack(parts)


def tabular_features(exclude: Sequence[str] = (), max_categories: int = 50) -> TabularFeatures:
    return TabularFeatures(exclude=tuple(exclude), max_categories=max_categories)
