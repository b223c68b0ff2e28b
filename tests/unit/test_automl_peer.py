"""The pure helpers of the AutoML peer benchmark: salting a definition, reading a cycle's log, statistics."""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest
import yaml

from tests.sample_data import REPO


def _benchmark():
    spec = importlib.util.spec_from_file_location("automl_peer", REPO / "benchmarks" / "automl_peer.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


peer = _benchmark()


def test_salts_from_a_count_or_a_list():
    assert peer.salt_list(None) == [f"peer-{i}" for i in range(1, 6)]
    assert peer.salt_list(["2"]) == ["peer-1", "peer-2"]
    assert peer.salt_list(["a", "b"]) == ["a", "b"]
    with pytest.raises(peer.BenchmarkError):
        peer.salt_list(["0"])
    with pytest.raises(peer.BenchmarkError):
        peer.salt_list(["a", "a"])


def test_the_shipped_definition_gets_the_salt_and_keeps_its_comments():
    text = (REPO / "pipelines" / "usecases" / "marketing.yaml").read_text()
    salted = peer.with_salt(text, "peer-1")
    before, after = yaml.safe_load(text), yaml.safe_load(salted)
    assert after["split"] == {**before["split"], "salt": "peer-1"}
    after.pop("split"), before.pop("split")
    assert after == before
    assert salted.count("#") == text.count("#")
    assert len(salted.splitlines()) == len(text.splitlines())


@pytest.mark.parametrize("salt", ["peer-2", "x: y", "a, b", "{odd}", "'quoted'", "123", ""])
def test_a_salt_replaces_the_previous_one_whatever_its_characters(salt):
    text = "name: m\nsplit: {strategy: stratified, holdout: 0.2}  # a comment\nkey: [id]\n"
    salted = peer.with_salt(peer.with_salt(text, "first"), salt)
    assert yaml.safe_load(salted) == {"name": "m", "key": ["id"],
                                      "split": {"strategy": "stratified", "holdout": 0.2, "salt": salt}}


def test_a_block_split_gets_one_salt_line():
    text = "name: m\nsplit:\n  strategy: stratified  # c\n  # note\n  holdout: 0.2\n  salt: old\nkey: [id]\n"
    salted = peer.with_salt(text, "new")
    assert yaml.safe_load(salted)["split"] == {"strategy": "stratified", "holdout": 0.2, "salt": "new"}
    assert salted.count("salt:") == 1
    assert "# note" in salted and "# c" in salted


def test_an_unusual_layout_is_rewritten_and_a_missing_split_refused():
    salted = peer.with_salt("split: {a: 1, b: {c: 2}}\n", "s")
    assert yaml.safe_load(salted) == {"split": {"a": 1, "b": {"c": 2}, "salt": "s"}}
    with pytest.raises(peer.BenchmarkError):
        peer.with_salt("name: m\n", "s")


def test_training_seconds_come_from_the_stage_else_the_whole_command():
    seconds, source = peer.training_seconds({peer.TRAINING_STAGE: 12.5, "report": 1.0}, 40.0)
    assert seconds == 12.5 and peer.TRAINING_STAGE in source
    seconds, source = peer.training_seconds({"report": 1.0}, 40.0)
    assert seconds == 40.0 and "whole" in source


def test_the_cycle_log_names_its_run_and_its_split():
    lines = [
        "12:00:00.000 | INFO | Task run 'prepare training data-339' - marketing: stratified: 5 folds; "
        "holdout: 1159 of 5822 rows; 4663 training rows, 1159 holdout rows",
        "MLflow: experiment 'marketing', run eaee703b40314f3e9ce029398367be7b",
    ]
    assert peer.cycle_run(lines) == ("marketing", "eaee703b40314f3e9ce029398367be7b")
    assert peer.split_sizes(lines) == (4663, 1159)
    assert peer.cycle_run(lines[:1]) is None
    assert peer.split_sizes(lines[1:]) is None


def test_spread_and_paired_difference():
    stats = peer.spread([0.70, 0.72, math.nan, 0.74])
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(0.72)
    assert stats["std"] == pytest.approx(0.02) and (stats["min"], stats["max"]) == (0.70, 0.74)
    difference = peer.paired_difference([0.75, 0.74, 0.73], [0.74, 0.74, math.nan])
    assert difference["n"] == 2 and difference["mean"] == pytest.approx(0.005)
    assert difference["se"] == pytest.approx(peer.spread([0.01, 0.0])["std"] / math.sqrt(2))
    single = peer.paired_difference([0.75], [0.74])
    assert single["mean"] == pytest.approx(0.01) and math.isnan(single["se"]) and math.isnan(single["std"])
    assert peer.spread([])["n"] == 0 and math.isnan(peer.spread([])["mean"])


def test_tables_and_json():
    header, rows = ["salt", "roc_auc"], [["peer-1", "0.7500"]]
    assert peer.render(header, rows, markdown=True).splitlines() == [
        "| salt | roc_auc |", "| --- | ---: |", "| peer-1 | 0.7500 |"]
    plain = peer.render(header, rows, markdown=False).splitlines()
    assert len({len(line) for line in plain}) == 1 and plain[2].startswith("peer-1")
    assert peer.number(math.nan) == "n/a" and peer.number(0.123456) == "0.1235"
    assert json.loads(json.dumps(peer.json_safe({"a": [math.nan, 1.0], "b": (2.0,)}))) == {"a": [None, 1.0],
                                                                                         "b": [2.0]}
