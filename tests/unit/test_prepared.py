"""The training data a cycle prepares: narrowed integer columns, and rows given back as they were read."""

import numpy as np
import pandas as pd

from features.marketing import ATTRIBUTE_COLUMNS
from pipelines.config.definitions import parse
from pipelines.nodes.estimators import candidate_factory
from pipelines.nodes.training import compact, prepare
from tests.definitions import USECASES
from tests.sample_data import sample_csv


def test_compact_narrows_integer_columns_and_keeps_their_values():
    frame = pd.DataFrame({"code": [1, 41, 7], "count": [0, 300, 2], "big": [0, 2**40, 1],
                          "price": [1.5, 2.25, 3.0], "name": ["a", "b", "c"]})
    narrowed = compact(frame)
    assert narrowed.dtypes.astype(str).to_dict() == {
        "code": "int8", "count": "int16", "big": "int64", "price": "float64",
        "name": frame["name"].dtype.name}
    pd.testing.assert_frame_equal(narrowed.astype(frame.dtypes.to_dict()), frame)
    assert frame["code"].dtype == np.int64, "the caller's frame is left as it was"


def test_prepared_rows_score_as_read_and_narrowed_alike():
    spec = parse(USECASES / "marketing.yaml")
    customers = pd.read_csv(sample_csv("marketing.csv"))
    data = prepare(spec, customers)
    assert all(data.frame[name].dtype.itemsize == 1 for name in ATTRIBUTE_COLUMNS)
    rows = data.frame.iloc[data.plan.final.test[:50]]
    assert data.as_read(rows).dtypes.to_dict() == customers.dtypes.to_dict()
    model = candidate_factory(spec, spec.candidates["linear"], data.ratio)()
    model.fit(data.frame.iloc[data.plan.final.train], data.y[data.plan.final.train])
    np.testing.assert_array_equal(model.predict_proba(rows), model.predict_proba(data.as_read(rows)))
