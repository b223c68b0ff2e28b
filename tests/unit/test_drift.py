import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from models.drift import ReferenceProfile, population_stability
from pipelines.adapters.landing_zone import pending_files


def reference_frame(rows: int = 5000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "income": rng.lognormal(10, 0.5, rows),
        "level": rng.integers(0, 10, rows),
        "segment": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2]),
    })


def test_psi_is_zero_for_identical_shares_and_grows_with_the_shift():
    expected = np.array([0.25, 0.25, 0.25, 0.25])
    assert population_stability(expected, expected) == pytest.approx(0.0)
    small = population_stability(expected, np.array([0.3, 0.25, 0.25, 0.2]))
    large = population_stability(expected, np.array([0.7, 0.1, 0.1, 0.1]))
    assert 0 < small < large


def test_a_sample_of_the_same_population_does_not_drift():
    profile = ReferenceProfile.from_frame(reference_frame())
    report = profile.compare(reference_frame(400, seed=1), threshold=0.25, min_rows=200)
    assert report.judged and not report.drifted
    assert report.max_excess < 0.1


def test_a_shifted_column_drifts_and_is_named():
    profile = ReferenceProfile.from_frame(reference_frame())
    batch = reference_frame(400, seed=2).assign(income=lambda f: f.income * 3)
    report = profile.compare(batch, threshold=0.25, min_rows=200)
    assert report.drifted
    assert report.worst.column == "income"
    assert "DRIFTED" in report.summary() and "income" in report.summary()


def test_unseen_categories_missing_values_and_absent_columns_are_handled():
    profile = ReferenceProfile.from_frame(reference_frame())
    batch = reference_frame(300, seed=3).drop(columns=["level"])
    batch.loc[:149, "segment"] = "brand new"
    batch.loc[:99, "income"] = np.nan
    report = profile.compare(batch, threshold=0.25, min_rows=200)
    assert {c.column for c in report.columns} == {"income", "segment"}
    assert report.drifted


def test_small_batches_are_not_judged():
    profile = ReferenceProfile.from_frame(reference_frame())
    batch = reference_frame(20, seed=4).assign(income=lambda f: f.income * 10)
    report = profile.compare(batch, threshold=0.25, min_rows=200)
    assert not report.judged and not report.drifted
    assert "not judged" in report.summary()


def test_profile_round_trips_through_json():
    profile = ReferenceProfile.from_frame(reference_frame())
    again = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    batch = reference_frame(300, seed=5)
    assert again.compare(batch, 0.25).to_dict() == profile.compare(batch, 0.25).to_dict()


def test_landing_zone_takes_settled_files_oldest_first(tmp_path):
    now = time.time()
    for name, age in (("b.csv", 30), ("a.csv", 20), ("c.csv", 40), ("fresh.csv", 0),
                      (".hidden.csv", 50), ("upload.csv.part", 50)):
        path = tmp_path / name
        path.write_text("x\n")
        os.utime(path, (now - age, now - age))
    assert [p.name for p in pending_files(tmp_path, settle_seconds=2)] == ["c.csv", "b.csv", "a.csv"]
    assert pending_files(tmp_path / "missing", settle_seconds=2) == []


def test_retraining_section_defaults_and_errors(tmp_path):
    import yaml

    from pipelines.config.definitions import parse as parse_definition
    from pipelines.config.errors import UseCaseError
    from pipelines.config.usecase import DEFAULT_SCHEDULE

    def parse(retraining):
        raw = {"name": "demo", "dataset": "demo.csv", "expectations": "demo.yaml", "key": ["id"],
               "target": "label", "candidates": ["linear"]}
        if retraining is not None:
            raw["retraining"] = retraining
        path = tmp_path / "demo.yaml"
        path.write_text(yaml.safe_dump(raw))
        return parse_definition(path).retraining

    default = parse(None)
    assert default.schedule == DEFAULT_SCHEDULE and default.on_new_data == "always"
    assert parse({"schedule": None}).schedule is None
    with pytest.raises(UseCaseError, match="not a cron expression"):
        parse({"schedule": "every monday"})
    with pytest.raises(UseCaseError, match="on_new_data: must be 'always', 'drift' or 'never'"):
        parse({"on_new_data": "sometimes"})
    with pytest.raises(UseCaseError, match="unknown key 'shedule' in retraining"):
        parse({"shedule": "0 6 * * 1"})
