"""The paired bootstrap and the decision rule of findings (lowspike.stats), on hand-computed cases."""

import numpy as np
import pytest

from lowspike import stats


def test_each_resample_draws_n_samples_and_is_the_same_for_the_same_seed():
    first = stats.Resampler.create(samples=7, resamples=50, seed=3, level=0.95)
    again = stats.Resampler.create(samples=7, resamples=50, seed=3, level=0.95)
    other = stats.Resampler.create(samples=7, resamples=50, seed=4, level=0.95)
    assert first.weights.shape == (50, 7)
    np.testing.assert_allclose(first.weights.sum(axis=1), 1.0)
    counts = first.weights * 7
    np.testing.assert_allclose(counts, np.round(counts))  # whole draws
    np.testing.assert_array_equal(first.weights, again.weights)
    assert not np.array_equal(first.weights, other.weights)


def test_resampled_means_are_the_weighted_means_of_the_drawn_samples():
    resampler = stats.Resampler(np.array([[1.0, 0.0, 0.0], [0.0, 2 / 3, 1 / 3], [1 / 3, 1 / 3, 1 / 3]]), 0.95)
    # [x0], [x1, x1, x2], [x0, x1, x2] with x = (3, 6, 9)
    np.testing.assert_allclose(resampler.means([3.0, 6.0, 9.0]), [3.0, 7.0, 6.0])
    with pytest.raises(ValueError, match="expected 3 per-sample values"):
        resampler.means([1.0, 2.0])


def test_pairing_cancels_what_both_models_share():
    """Two models that differ on one sample of 1000: every resample that draws it shows the
    difference, so the paired interval of the accuracy difference is [0, a few samples]."""
    n = 1000
    base = np.zeros(n)
    base[:900] = 1.0
    config = base.copy()
    config[950] = 1.0  # one more correct sample
    resampler = stats.Resampler.create(n, 2000, seed=0, level=0.95)
    low, high = resampler.interval(resampler.means(config) - resampler.means(base))
    assert low >= 0.0 and high <= 4 / n
    unpaired = stats.Resampler.create(n, 2000, seed=1, level=0.95)
    wide = resampler.means(config) - unpaired.means(base)
    assert np.quantile(wide, 0.975) - np.quantile(wide, 0.025) > 0.02  # the sampling noise of 90%


def test_interval_is_the_percentile_interval_and_undefined_with_a_nan():
    resampler = stats.Resampler(np.ones((1, 1)), 0.5)
    values = np.arange(101, dtype=float)  # quantiles 0.25 and 0.75 of 0..100
    assert resampler.interval(values) == (25.0, 75.0)
    assert resampler.interval(np.array([1.0, np.nan])) is None


def test_relative_deltas_eq_11_with_an_undefined_zero_baseline():
    deltas = stats.relative_deltas(np.array([1.0, 3.0, 1.0]), np.array([2.0, 2.0, 0.0]))
    np.testing.assert_allclose(deltas[:2], [-0.5, 0.5])
    assert np.isnan(deltas[2])


def test_decide_holds_fails_and_undecided():
    clear, unclear = stats.Margin(0.3, 0.1), stats.Margin(0.05, 0.1)
    satisfied = np.array([True] * 96 + [False] * 4)
    assert stats.decide(satisfied, [clear], 0.95).mark == stats.HOLDS
    assert stats.decide(satisfied, [clear, unclear], 0.95).mark == stats.UNDECIDED  # within the seed spread
    assert stats.decide(satisfied, [stats.Margin(0.3, None)], 0.95).mark == stats.UNDECIDED  # spread unknown
    assert stats.decide(np.array([True] * 94 + [False] * 6), [clear], 0.95).mark == stats.UNDECIDED
    decision = stats.decide(np.array([True] * 5 + [False] * 95), [clear], 0.95)
    assert (decision.mark, decision.support) == (stats.FAILS, 0.05)
    assert decision.to_dict() == {"mark": stats.FAILS, "support": 0.05, "margins": [{"value": 0.3, "spread": 0.1}]}


def test_combine_lets_a_failing_part_win_then_an_undecided_one():
    assert stats.combine([stats.HOLDS, stats.NOT_RUN]) == stats.HOLDS
    assert stats.combine([stats.HOLDS, stats.UNDECIDED]) == stats.UNDECIDED
    assert stats.combine([stats.UNDECIDED, stats.FAILS]) == stats.FAILS
    assert stats.combine([stats.NOT_RUN]) == stats.NOT_RUN


def test_seed_spread_is_the_sample_standard_deviation_relative_to_the_mean():
    # 0.9, 1.0, 1.1: sample std 0.1, mean 1.0
    assert stats.seed_spread([0.9, 1.0, 1.1]) == pytest.approx(0.1)
    assert stats.seed_spread_absolute([0.9, 1.0, 1.1]) == pytest.approx(0.1)
    assert stats.seed_spread([2.0, 2.2, 1.8]) == pytest.approx(0.1)
    assert stats.seed_spread([1.0]) is None and stats.seed_spread([0.0, 0.0]) is None
