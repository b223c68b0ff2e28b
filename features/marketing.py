"""CoIL 2000 Caravan customer attributes to a numeric matrix for the purchase model.

Only the two socio-demographic type codes are true categories; every other attribute is a band or
a count whose order carries meaning, so it stays a number instead of being one-hot encoded.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

KEY_COLUMN = "customer_id"
TARGET_COLUMN = "Purchase"

# Customer subtype (L0, codes 1-41) and customer main type (L2, codes 1-10).
NOMINAL_COLUMNS = ["MOSTYPE", "MOSHOOFD"]
NOMINAL_CODES = {"MOSTYPE": list(range(1, 42)), "MOSHOOFD": list(range(1, 11))}

# The 85 attributes in the order of the CoIL data dictionary.
ATTRIBUTE_COLUMNS = [
    "MOSTYPE", "MAANTHUI", "MGEMOMV", "MGEMLEEF", "MOSHOOFD", "MGODRK", "MGODPR", "MGODOV", "MGODGE",
    "MRELGE", "MRELSA", "MRELOV", "MFALLEEN", "MFGEKIND", "MFWEKIND", "MOPLHOOG", "MOPLMIDD", "MOPLLAAG",
    "MBERHOOG", "MBERZELF", "MBERBOER", "MBERMIDD", "MBERARBG", "MBERARBO", "MSKA", "MSKB1", "MSKB2",
    "MSKC", "MSKD", "MHHUUR", "MHKOOP", "MAUT1", "MAUT2", "MAUT0", "MZFONDS", "MZPART", "MINKM30",
    "MINK3045", "MINK4575", "MINK7512", "MINK123M", "MINKGEM", "MKOOPKLA", "PWAPART", "PWABEDR",
    "PWALAND", "PPERSAUT", "PBESAUT", "PMOTSCO", "PVRAAUT", "PAANHANG", "PTRACTOR", "PWERKT", "PBROM",
    "PLEVEN", "PPERSONG", "PGEZONG", "PWAOREG", "PBRAND", "PZEILPL", "PPLEZIER", "PFIETS", "PINBOED",
    "PBYSTAND", "AWAPART", "AWABEDR", "AWALAND", "APERSAUT", "ABESAUT", "AMOTSCO", "AVRAAUT", "AAANHANG",
    "ATRACTOR", "AWERKT", "ABROM", "ALEVEN", "APERSONG", "AGEZONG", "AWAOREG", "ABRAND", "AZEILPL",
    "APLEZIER", "AFIETS", "AINBOED", "ABYSTAND",
]
ORDINAL_COLUMNS = [name for name in ATTRIBUTE_COLUMNS if name not in NOMINAL_COLUMNS]

TARGET_CODES = {"Yes": 1, "No": 0}


def as_float32(values: pd.DataFrame | np.ndarray) -> np.ndarray:
    """Codes as float32: exact for small integers, and half the memory of float64 for every model."""
    return np.asarray(values, dtype=np.float32)


def marketing_preprocessor(scale_ordinal: bool = False, one_hot: bool = True) -> ColumnTransformer:
    """An unfitted transformer from raw marketing rows to model inputs.

    The type codes are one-hot encoded over the full code lists of the data dictionary rather than
    the codes seen in training, so every retrain yields the same columns and a code that a sample
    happens to lack still gets its column. Codes outside the dictionary become all zeros instead
    of failing at prediction time. Listing the attributes explicitly (``remainder="drop"``) keeps
    the pseudonymous key, the target and any column added later out of the model. The matrix is
    float32 whatever integer type the codes arrive in.

    ``one_hot=False`` keeps each type code as one column, the first two of the matrix, for models
    that split on categories themselves (histogram boosting's ``categorical_features: [0, 1]``):
    85 columns instead of 134, which is a third less memory and time on large data.
    """
    nominal = OneHotEncoder(
        categories=[NOMINAL_CODES[name] for name in NOMINAL_COLUMNS],
        handle_unknown="ignore",
        sparse_output=False,
        dtype=np.float32,
    )
    to_float32 = FunctionTransformer(as_float32, feature_names_out="one-to-one")
    if not one_hot:
        nominal = to_float32
    ordinal = make_pipeline(to_float32, StandardScaler()) if scale_ordinal else to_float32
    return ColumnTransformer(
        [("nominal", nominal, NOMINAL_COLUMNS), ("ordinal", ordinal, ORDINAL_COLUMNS)],
        remainder="drop",
        verbose_feature_names_out=False,
    )


def purchase_target(frame: pd.DataFrame) -> pd.Series:
    """The purchase label as 1 for "Yes" and 0 for "No", aligned with the frame's index."""
    labels = frame[TARGET_COLUMN].astype(str).str.strip()
    unexpected = sorted(set(labels) - set(TARGET_CODES))
    if unexpected:
        # Guessing a class for an unknown label would silently corrupt the training target.
        raise ValueError(f"{TARGET_COLUMN} has values other than Yes/No: {unexpected}")
    return labels.map(TARGET_CODES).astype(int).rename(TARGET_COLUMN)
