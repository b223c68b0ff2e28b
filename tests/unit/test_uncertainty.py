import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from models.uncertainty import delong_auc_difference, paired_bootstrap


def scored(n=2000, signal=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)
    return y, rng.normal(size=n) + signal * y


def test_a_copy_of_the_same_model_differs_by_nothing():
    y, scores = scored()
    interval = paired_bootstrap(roc_auc_score, y, scores, scores.copy(), stratify=True, resamples=200)
    assert interval.estimate == 0 and interval.low == interval.high == 0
    assert not interval.beats(0.0)


def test_a_clearly_better_model_beats_zero_and_a_reseeded_copy_does_not():
    y, strong = scored(signal=1.5)
    _, weak = scored(signal=0.3, seed=1)
    assert paired_bootstrap(roc_auc_score, y, strong, weak, stratify=True, resamples=300).beats(0.0)
    rng = np.random.default_rng(5)
    noisy_twin = strong + rng.normal(scale=0.05, size=len(strong))
    twin = paired_bootstrap(roc_auc_score, y, noisy_twin, strong, stratify=True, resamples=300)
    assert twin.low < 0 < twin.high


def test_delong_agrees_with_the_exact_auc_and_with_the_bootstrap():
    y, first = scored(signal=1.0, seed=2)
    _, second = scored(signal=0.7, seed=3)
    delong = delong_auc_difference(y, first, second)
    assert delong.estimate == pytest.approx(roc_auc_score(y, first) - roc_auc_score(y, second))
    boot = paired_bootstrap(roc_auc_score, y, first, second, stratify=True, resamples=1000)
    assert delong.high - delong.low == pytest.approx(boot.high - boot.low, rel=0.25)


def test_blocks_of_dates_widen_the_interval_when_days_move_together():
    rng = np.random.default_rng(4)
    dates = np.repeat(np.arange(300), 5)
    day_effect = np.repeat(rng.normal(size=300), 5)
    y = rng.normal(size=1500) + day_effect
    good, other = y + rng.normal(scale=1.0, size=1500) + 2 * day_effect, y + rng.normal(scale=1.0, size=1500)

    def negative_mse(truth, score):
        return -float(np.mean((truth - score) ** 2))

    rows = paired_bootstrap(negative_mse, y, good, other, resamples=300)
    blocks = paired_bootstrap(negative_mse, y, good, other, resamples=300, dates=dates)
    assert blocks.method == "block bootstrap over dates"
    assert (blocks.high - blocks.low) > (rows.high - rows.low)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="one length"):
        paired_bootstrap(roc_auc_score, np.array([0, 1]), np.array([0.1]), np.array([0.2, 0.3]))
    with pytest.raises(ValueError, match="two rows of each class"):
        delong_auc_difference(np.array([0, 0, 1]), np.zeros(3), np.ones(3))
