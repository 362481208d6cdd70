"""Rank statistics of NAS proxies, against values computed by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from gtn_edu.nas.stats import (
    RankCorrelation,
    bootstrap_ci,
    paired_bootstrap,
    rank_correlations,
    seed_to_seed,
    spearman,
    top_half,
)


def test_spearman_by_hand():
    # ranks differ by one swap: rho = 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 2 / 60
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([10, 20, 30], [3, 2, 1]) == pytest.approx(-1.0)
    # ties get average ranks (1.5, 1.5, 3, 4): Pearson of the ranks = 4.5 / sqrt(4.5 * 5)
    assert spearman([1, 1, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_top_half_keeps_the_proxys_best():
    # the proxy's top three are architectures 5, 4, 0 (scores 6, 5, 4); their truths 5, 6, 1
    # ranks (3, 2, 1) against (2, 3, 1): rho = 1 - 6 * 2 / (3 * 8) = 0.5
    assert top_half([4, 3, 2, 1, 5, 6], [1, 2, 3, 4, 6, 5]) == pytest.approx(0.5)
    # over all six they correlate less (rank differences 3, 1, -1, -3, -1, 1): good only at the top
    assert spearman([4, 3, 2, 1, 5, 6], [1, 2, 3, 4, 6, 5]) == pytest.approx(1 - 6 * 22 / 210)


def test_bootstrap_interval():
    perfect = bootstrap_ci(range(10), range(10), n_boot=200)
    assert (perfect.rho, perfect.low, perfect.high) == pytest.approx((1.0, 1.0, 1.0)) and perfect.n == 10
    proxy = [0.3, 0.1, 0.7, 0.2, 0.9, 0.5, 0.4, 0.8, 0.6, 0.0, 0.35, 0.65]
    truth = [0.2, 0.3, 0.6, 0.1, 0.7, 0.9, 0.3, 0.5, 0.8, 0.2, 0.15, 0.4]
    a, b = bootstrap_ci(proxy, truth, seed=3), bootstrap_ci(proxy, truth, seed=3)
    assert a == b and a.low < a.rho < a.high and -1 <= a.low and a.high <= 1
    narrow = bootstrap_ci(proxy, truth, seed=3, level=0.5)
    assert a.low <= narrow.low and narrow.high <= a.high
    both = rank_correlations(proxy, truth, n_boot=100)
    assert set(both) == {"all", "top_half"} and all(isinstance(v, RankCorrelation) for v in both.values())
    assert both["top_half"].rho == pytest.approx(top_half(proxy, truth)) and both["top_half"].n == 12
    assert "[" in str(both["all"])


def test_seed_to_seed_is_the_mean_pairwise_correlation():
    runs = [[1, 2, 3, 4], [1, 2, 3, 4], [1, 3, 2, 4]]
    assert seed_to_seed(runs) == pytest.approx((1.0 + 0.8 + 0.8) / 3)
    with pytest.raises(ValueError, match="at least 2 seeds"):
        seed_to_seed([[1, 2, 3]])


@pytest.mark.parametrize("proxy,truth,match", [([1, 2, 3], [1, 2], "same length"), ([1, 2], [1, 2], "at least 3"),
                                               ([1, 2, float("nan")], [1, 2, 3], "finite")])
def test_bad_input_names_the_fix(proxy, truth, match):
    with pytest.raises(ValueError, match=match):
        spearman(proxy, truth)


def test_paired_bootstrap_by_hand():
    """The same resampled indices for both proxies, drawn as default_rng(seed).integers(0, n, n) per resample."""
    a, b = [0.3, 0.1, 0.7, 0.2, 0.9, 0.5], [0.6, 0.2, 0.1, 0.3, 0.8, 0.4]
    t = [0.2, 0.3, 0.6, 0.1, 0.7, 0.9]
    res = paired_bootstrap(a, b, t, n_boot=6, seed=4)
    rng, diffs = np.random.default_rng(4), []
    pa, pb, pt = map(np.asarray, (a, b, t))
    for _ in range(6):
        idx = rng.integers(0, 6, 6)
        if min(np.ptp(pa[idx]), np.ptp(pb[idx]), np.ptp(pt[idx])) > 0:  # a constant resample is dropped
            diffs.append(stats.spearmanr(pa[idx], pt[idx]).statistic - stats.spearmanr(pb[idx], pt[idx]).statistic)
    assert len(diffs) >= 4 and res.n_boot == len(diffs) and res.n == 6
    assert res.difference == pytest.approx(stats.spearmanr(a, t).statistic - stats.spearmanr(b, t).statistic)
    assert (res.low, res.high) == pytest.approx(tuple(np.quantile(diffs, [0.025, 0.975])))
    assert res.above_zero == pytest.approx(np.mean(np.asarray(diffs) > 0))
    assert "resamples" in str(res) and res.level == 0.95


def test_paired_bootstrap_of_a_proxy_with_itself_is_exactly_zero():
    a, t = [0.3, 0.1, 0.7, 0.2, 0.9, 0.5, 0.4], [0.2, 0.3, 0.6, 0.1, 0.7, 0.9, 0.5]
    res = paired_bootstrap(a, a, t, n_boot=200)
    assert (res.difference, res.low, res.high, res.above_zero) == (0.0, 0.0, 0.0, 0.0) and res.n_boot > 150
    top = paired_bootstrap(a, list(range(7)), t, statistic=top_half, n_boot=50)  # any statistic
    assert top.difference == pytest.approx(top_half(a, t) - top_half(list(range(7)), t))


@pytest.mark.parametrize("a,b,t,match", [([1, 2, 3], [1, 2], [1, 2, 3], "same architectures, got 3 and 2"),
                                         ([1, 2, 3], [3, 2, 1], [1, 2], "same length"),
                                         ([1, 2], [2, 1], [1, 2], "at least 3")])
def test_paired_bootstrap_bad_input_names_the_fix(a, b, t, match):
    with pytest.raises(ValueError, match=match):
        paired_bootstrap(a, b, t)
