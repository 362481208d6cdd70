r"""Rank statistics: how well a cheap evaluation orders architectures like the expensive one.

A NAS proxy (GTN evaluation, a few steps of real data, a zero-cost score) is useful when it
*ranks* architectures as their real, asymptotic accuracy does; its absolute value does
not matter. The paper reports Spearman's rank correlation (Figure 3c): 0.3606 over all
sampled cells and 0.5582 over the top half as ranked by the GTN, because a search only
keeps architectures the proxy rates highly.

* `spearman(proxy, truth)`: Spearman's $\rho$ (scipy.stats, average ranks for ties);
* `top_half(proxy, truth)`: the same over the half of the architectures the proxy scores
  highest;
* `rank_correlations(...)`: both, each with a percentile bootstrap confidence interval
  (architectures resampled with replacement);
* `paired_bootstrap(a, b, truth)`: whether proxy a ranks better than proxy b, with an
  interval on the difference from the same resampled architectures for both;
* `seed_to_seed(runs)`: the ground truth's own rank correlation between seeds, the
  ceiling no proxy can beat on average (a proxy is compared with one noisy measurement).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["RankCorrelation", "PairedDifference", "spearman", "top_half", "bootstrap_ci", "paired_bootstrap",
           "rank_correlations", "seed_to_seed"]


@dataclass(frozen=True)
class RankCorrelation:
    """A rank correlation with its bootstrap confidence interval.

    Attributes:
        rho: Spearman's rank correlation on the given architectures.
        low: lower end of the confidence interval.
        high: upper end of the confidence interval.
        n: number of architectures it was computed on.
        level: confidence level of [low, high].
    """

    rho: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.rho:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"


def _pair(proxy: Sequence[float], truth: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(proxy, dtype=float), np.asarray(truth, dtype=float)
    if p.shape != t.shape or p.ndim != 1:
        raise ValueError(f"proxy and truth must be 1-D and of the same length, got shapes {p.shape} and {t.shape}")
    if len(p) < 3:
        raise ValueError(f"a rank correlation needs at least 3 architectures, got {len(p)}")
    if not (np.isfinite(p).all() and np.isfinite(t).all()):
        raise ValueError("proxy and truth must be finite; drop the architectures whose evaluation failed")
    return p, t


def _resamples(n: int, n_boot: int, seed: int):
    """`n_boot` bootstrap resamples of n architectures: index arrays drawn with replacement from numpy's `seed`."""
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        yield rng.integers(0, n, n)


def spearman(proxy: Sequence[float], truth: Sequence[float]) -> float:
    """Spearman's rank correlation of two scores of the same architectures (nan if one is constant)."""
    p, t = _pair(proxy, truth)
    if np.ptp(p) == 0 or np.ptp(t) == 0:
        return math.nan
    return float(stats.spearmanr(p, t).statistic)


def top_half(proxy: Sequence[float], truth: Sequence[float]) -> float:
    """Spearman's rank correlation over the architectures in the top half by `proxy` (ceil(n/2) of them).

    Ties at the cut are broken by order of appearance (a stable sort).
    """
    p, t = _pair(proxy, truth)
    keep = np.argsort(-p, kind="stable")[: math.ceil(len(p) / 2)]
    return spearman(p[keep], t[keep]) if len(keep) >= 3 else math.nan


def bootstrap_ci(proxy: Sequence[float], truth: Sequence[float], statistic: Callable = spearman, *,
                 n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> RankCorrelation:
    """`statistic(proxy, truth)` with a percentile bootstrap interval over resampled architectures.

    Resamples whose statistic is undefined (a constant resample) are dropped.
    """
    p, t = _pair(proxy, truth)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    values = []
    for idx in _resamples(len(p), n_boot, seed):
        if np.ptp(p[idx]) > 0 and np.ptp(t[idx]) > 0:
            v = statistic(p[idx], t[idx])
            if not math.isnan(v):
                values.append(v)
    rho = statistic(p, t)
    if not values:
        return RankCorrelation(rho, math.nan, math.nan, len(p), level)
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return RankCorrelation(rho, float(low), float(high), len(p), level)


@dataclass(frozen=True)
class PairedDifference:
    """`statistic(a, truth) - statistic(b, truth)` with a paired bootstrap interval.

    Attributes:
        difference: the difference on the given architectures.
        low: lower end of the percentile interval.
        high: upper end of the percentile interval.
        above_zero: fraction of the (valid) resamples whose difference is > 0.
        n: number of architectures.
        n_boot: resamples that counted (those with an undefined statistic are dropped).
        level: confidence level of [low, high].
    """

    difference: float
    low: float
    high: float
    above_zero: float
    n: int
    n_boot: int
    level: float = 0.95

    def __str__(self) -> str:
        return (f"{self.difference:+.3f} [{self.low:+.3f}, {self.high:+.3f}], > 0 in {100 * self.above_zero:.1f}% "
                f"of {self.n_boot} resamples (n={self.n})")


def paired_bootstrap(proxy_a: Sequence[float], proxy_b: Sequence[float], truth: Sequence[float],
                     statistic: Callable = spearman, *, n_boot: int = 1000, level: float = 0.95,
                     seed: int = 0) -> PairedDifference:
    r"""How much better proxy a ranks the architectures than proxy b, resampling both together.

    With `rng = numpy.random.default_rng(seed)`, each resample draws architecture indices
    with replacement, `idx = rng.integers(0, n, n)`, and computes
    $\Delta^* = s(a_{idx}, t_{idx}) - s(b_{idx}, t_{idx})$ on the *same* indices: what the
    two proxies' rankings share (an architecture both misjudge) cancels in the difference,
    so two overlapping `bootstrap_ci` intervals can still hide a clear winner. A resample
    where either statistic is undefined (a, b or the truth constant on it) is dropped.

    Args:
        proxy_a: the first proxy's scores.
        proxy_b: the second proxy's scores, of the same architectures in the same order.
        truth: the ground truth of those architectures.
        statistic: `spearman`, `top_half` or any `f(proxy, truth) -> float`.
        n_boot: resamples drawn.
        level: confidence level of the percentile interval.
        seed: numpy seed of the resampling.

    Returns:
        A `PairedDifference`: the difference, its interval, and the fraction of resamples in
        which a beats b (near 1: a ranks better; near 0.5: no telling them apart).
    """
    if len(proxy_a) != len(proxy_b):
        raise ValueError(f"proxy_a and proxy_b must score the same architectures, got {len(proxy_a)} and "
                         f"{len(proxy_b)} scores")
    a, t = _pair(proxy_a, truth)
    b, _ = _pair(proxy_b, truth)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    diffs = []
    for idx in _resamples(len(t), n_boot, seed):
        if np.ptp(t[idx]) > 0 and np.ptp(a[idx]) > 0 and np.ptp(b[idx]) > 0:
            d = statistic(a[idx], t[idx]) - statistic(b[idx], t[idx])
            if not math.isnan(d):
                diffs.append(d)
    diff = statistic(a, t) - statistic(b, t)
    if not diffs:
        return PairedDifference(diff, math.nan, math.nan, math.nan, len(t), 0, level)
    low, high = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return PairedDifference(diff, float(low), float(high), float(np.mean(np.asarray(diffs) > 0)), len(t),
                            len(diffs), level)


def rank_correlations(proxy: Sequence[float], truth: Sequence[float], *, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> dict[str, RankCorrelation]:
    """`{"all": ..., "top_half": ...}`: Spearman over all architectures and over the proxy's top half."""
    return {"all": bootstrap_ci(proxy, truth, spearman, n_boot=n_boot, level=level, seed=seed),
            "top_half": bootstrap_ci(proxy, truth, top_half, n_boot=n_boot, level=level, seed=seed)}


def seed_to_seed(runs: Sequence[Sequence[float]]) -> float:
    """Mean Spearman correlation between every pair of ground-truth runs (seeds) of the same architectures.

    Args:
        runs: one score list per seed, the architectures in the same order in each.
    """
    if len(runs) < 2:
        raise ValueError(f"seed_to_seed needs the scores of at least 2 seeds, got {len(runs)}")
    return float(np.mean([spearman(a, b) for a, b in itertools.combinations(runs, 2)]))
