"""Every branch of the promotion decision, for metrics where higher and where lower is better."""

import math

import pytest

from models.metrics import get_metric
from models.promotion import decide

AUC = get_metric("classification", "roc_auc")
RMSE = get_metric("regression", "rmse")
NAN = math.nan


def test_an_undefined_challenger_is_never_promoted():
    decision = decide(AUC, 0.0, NAN, None, None, {"base_rate": 0.5})
    assert not decision.promote and "undefined" in decision.reason


def test_the_challenger_must_beat_the_best_naive_baseline():
    decision = decide(AUC, 0.0, 0.55, None, None, {"always_up": 0.5, "persistence": 0.56})
    assert not decision.promote
    assert decision.baseline_name == "persistence" and decision.baseline == 0.56
    assert decision.reason == ("holdout roc_auc 0.5500 does not beat the naive baseline persistence "
                               "(0.5600)")
    # A tie is not a win.
    assert not decide(AUC, 0.0, 0.56, None, None, {"persistence": 0.56}).promote


def test_an_undefined_baseline_is_left_out():
    decision = decide(AUC, 0.0, 0.51, None, None, {"always_up": NAN, "persistence": 0.5})
    assert decision.promote and decision.baseline_name == "persistence"


def test_an_unscorable_champion_blocks_an_automatic_promotion():
    decision = decide(AUC, 0.0, 0.9, None, "3", {"base_rate": 0.5}, champion_error="ValueError: boom")
    assert not decision.promote
    assert decision.reason == ("the current champion v3 could not be scored on the holdout "
                               "(ValueError: boom); promote by hand if intended")


def test_the_first_champion_needs_only_to_beat_the_baseline():
    decision = decide(AUC, 0.01, 0.7, None, None, {"base_rate": 0.5})
    assert decision.promote
    assert decision.reason == ("first champion: holdout roc_auc 0.7000 beats the naive baseline "
                               "base_rate (0.5)")


def test_the_first_champion_without_any_baseline():
    decision = decide(AUC, 0.0, 0.7, None, None, {})
    assert decision.promote and decision.baseline is None
    assert decision.reason == "first champion: holdout roc_auc 0.7000 (no naive baseline to compare with)"


@pytest.mark.parametrize(("challenger", "promote"), [(0.7210, True), (0.7195, False), (0.7150, False)])
def test_the_champion_must_be_beaten_by_more_than_the_margin(challenger, promote):
    decision = decide(AUC, 0.01, challenger, 0.71, "2", {"base_rate": 0.5})
    assert decision.promote is promote
    verb = "beats" if promote else "does not beat"
    assert decision.reason == (f"holdout roc_auc {challenger:.4f} {verb} champion v2 (0.7100) "
                               "by more than 0.01")


def test_lower_is_better_for_errors():
    # The best naive baseline is the lowest error; beating the champion means a lower error.
    decision = decide(RMSE, 0.001, 0.0150, 0.0170, "4", {"always_up": 0.0200, "persistence": 0.0180})
    assert decision.promote and decision.baseline_name == "persistence"
    assert not decide(RMSE, 0.001, 0.0165, 0.0170, "4", {"persistence": 0.0180}).promote
    assert not decide(RMSE, 0.0, 0.0190, None, None, {"persistence": 0.0180}).promote


def test_a_champion_without_a_score_on_the_holdout_is_replaced():
    assert decide(AUC, 0.0, 0.6, NAN, "1", {"base_rate": 0.5}).promote


def test_the_decision_is_recorded_as_tags():
    tags = decide(AUC, 0.002, 0.7301, 0.71, "1", {"base_rate": 0.5}).tags()
    assert tags == {
        "promotion.decision": "promoted",
        "promotion.reason": "holdout roc_auc 0.7301 beats champion v1 (0.7100) by more than 0.002",
        "promotion.metric": "roc_auc",
        "promotion.challenger_value": "0.7301",
        "promotion.champion_value": "0.71",
        "promotion.champion_version": "1",
        "promotion.baseline_value": "0.5",
        "promotion.baseline": "base_rate",
        "promotion.margin": "0.002",
    }
    kept = decide(AUC, 0.0, 0.6, None, None, {"base_rate": 0.7}).tags()
    assert kept["promotion.decision"] == "kept champion" and kept["promotion.champion_version"] == "none"


def test_a_decision_is_pending_until_carried_out():
    decision = decide(get_metric("classification", "roc_auc"), 0.002, 0.8, None, None, {"base_rate": 0.5})
    pending = decision.pending_tags()
    assert pending["promotion.decision"] == "pending" and pending["promotion.intended"] == "promoted"
    assert decision.tags()["promotion.decision"] == "promoted"
    assert {k: v for k, v in pending.items() if k not in ("promotion.decision", "promotion.intended")} == {
        k: v for k, v in decision.tags().items() if k != "promotion.decision"}
