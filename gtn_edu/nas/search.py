"""Random search: sample architectures, score them with one evaluation, keep the best (section 3.4).

The paper's GTN-NAS is random search with GTN evaluation as the score: 800 cells drawn
uniformly from the space, each trained 128 steps on GTN data, the best few then trained
for real. Its point is cost: a better proxy at the same compute picks better architectures.

* `random_search(space, evaluation, n, ...)`: draw `n` genotypes from the search's own
  stream, score them with a `NASEvaluator` (cached, resumable) and return a `SearchResult`;
* `compare_searches(...)`: several searches per evaluation, each scored by the ground
  truth of the architecture it picks: which proxy finds better architectures, on average,
  and how much each search cost;
* `simulate_searches(...)`: the same comparison among architectures already scored (a
  stored ground-truth table): each search draws `n` of them, every proxy picks its best.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from ..arch_space import ArchSpace
from ..seeding import make_rng
from .evaluations import Evaluation
from .evaluator import NASEvaluator, Result, canonical

__all__ = ["SearchResult", "sample_specs", "random_search", "compare_searches", "simulate_searches", "truth_table"]


@dataclass
class SearchResult:
    """What one random search found.

    Attributes:
        results: every sampled architecture's `Result`, in sampling order.
        best: the highest-scoring one (the first of equal scores).
        seconds: the search's cost: the summed evaluation seconds (cached results count
            the seconds they took when computed, so a resumed search reports its full cost).
    """

    results: list[Result]
    best: Result
    seconds: float

    def top(self, k: int) -> list[Result]:
        """The `k` highest-scoring architectures, best first (stable for equal scores)."""
        return sorted(self.results, key=lambda r: -r.score)[:k]


def sample_specs(space: ArchSpace, n: int, seed: int = 0) -> list[dict]:
    """`n` architectures drawn from `space` with the search stream `(seed, "nas/search")`.

    Searches with the same seed sample the same architectures, whatever evaluation scores
    them, so two proxies can be compared on the same candidates.
    """
    if n < 1:
        raise ValueError(f"a search needs at least one architecture, got n={n}")
    rng = make_rng(seed, "nas/search")
    return [space.sample_spec(rng) for _ in range(n)]


def random_search(space: ArchSpace, evaluation: Evaluation, n: int, *, seed: int = 0,
                  cache_dir: str | os.PathLike | None = None, progress: bool = True) -> SearchResult:
    """Score `n` random architectures of `space` with `evaluation`; the best is the search's pick.

    Args:
        space: the search space (e.g. a `CellSpace`).
        evaluation: how a candidate is scored (higher is better).
        n: architectures to sample (the paper: 800).
        seed: the search's seed: which architectures are drawn and how each is initialised.
        cache_dir: the `NASEvaluator` cache (None: no cache); a rerun or a resumed search
            reads what is done and evaluates only the rest.
        progress: show a progress bar.
    """
    specs = sample_specs(space, n, seed)
    results = NASEvaluator(space, evaluation, cache_dir, seed=seed, progress=progress).evaluate(specs)
    best = max(results, key=lambda r: r.score)  # max keeps the first of equal scores
    return SearchResult(results, best, sum(r.seconds for r in results))


def compare_searches(space: ArchSpace, evaluations: Mapping[str, Evaluation], truth: Callable[[dict], float], *,
                     n: int, seeds: range | list[int] = range(3), cache_dir: str | os.PathLike | None = None,
                     progress: bool = False) -> dict:
    """Random searches with each evaluation, judged by the ground truth of what each picks.

    Args:
        space: the search space.
        evaluations: the proxies to compare, by name.
        truth: the ground-truth score of an architecture (e.g. a lookup in a table of real
            training results, or an `EpochsEvaluation` through a `NASEvaluator`).
        n: architectures per search (equal for every evaluation; the costs differ).
        seeds: one search per seed and evaluation; the same seed draws the same candidates
            for every evaluation.
        cache_dir: shared `NASEvaluator` cache folder.

    Returns:
        `{name: {"picked_truth": [...], "mean": m, "stdev": s, "seconds": [...],
        "best_possible": [...]}}`, one entry per seed in each list; `best_possible` is the
        ground truth of the best candidate of that seed's sample (what a perfect proxy picks).
    """
    out = {}
    for name, evaluation in evaluations.items():
        picked, seconds, ceiling = [], [], []
        for seed in seeds:
            search = random_search(space, evaluation, n, seed=seed, cache_dir=cache_dir, progress=progress)
            picked.append(truth(search.best.genotype))
            seconds.append(search.seconds)
            ceiling.append(max(truth(r.genotype) for r in search.results))
        out[name] = {"picked_truth": picked, "mean": statistics.fmean(picked),
                     "stdev": statistics.stdev(picked) if len(picked) > 1 else 0.0,
                     "seconds": seconds, "best_possible": ceiling}
    return out


def simulate_searches(scores: Mapping[str, Sequence[float]], truth: Sequence[float], *, n: int,
                      seeds: range | list[int] = range(100), seconds: Mapping[str, float] | None = None) -> dict:
    """Random searches among a pool of architectures every proxy has already scored.

    Search `seed` draws `n` distinct architectures of the pool (stream `(seed,
    "nas/pool-search")`, the same draw for every proxy); each proxy picks the one it scores
    highest (the first of equal scores), and the pick is judged by `truth`. With a pool of
    a few dozen and many seeds this estimates what `compare_searches` measures, without
    training anything new (as NAS benchmarks simulate searches from a table).

    Args:
        scores: `{proxy name: [score of pool architecture 0, 1, ...]}`.
        truth: the ground truth of the same architectures, in the same order.
        n: architectures per search (at most the pool's size).
        seeds: one search per seed.
        seconds: `{proxy name: seconds per architecture}`, for each search's cost (n times it).

    Returns:
        `{name: {"picked_truth": [...], "mean": m, "stdev": s, "seconds": [...],
        "best_possible": [...], "sample_mean": [...]}}`, one entry per seed in each list, as
        `compare_searches`; `sample_mean` is the mean truth of the drawn architectures
        (what picking one at random gets on average).
    """
    size = len(truth)
    if not 1 <= n <= size:
        raise ValueError(f"a search draws n architectures from the pool of {size}: need 1 <= n <= {size}, got {n}")
    for name, vals in scores.items():
        if len(vals) != size:
            raise ValueError(f"proxy {name!r} has {len(vals)} scores for a pool of {size} architectures")
    draws = [torch.randperm(size, generator=make_rng(seed, "nas/pool-search"))[:n].tolist() for seed in seeds]
    out = {}
    for name, vals in scores.items():
        picked = [truth[max(idx, key=lambda i: vals[i])] for idx in draws]  # max keeps the first of ties
        out[name] = {"picked_truth": picked, "mean": statistics.fmean(picked),
                     "stdev": statistics.stdev(picked) if len(picked) > 1 else 0.0,
                     "seconds": [n * (seconds or {}).get(name, 0.0)] * len(draws),
                     "best_possible": [max(truth[i] for i in idx) for idx in draws],
                     "sample_mean": [statistics.fmean(truth[i] for i in idx) for idx in draws]}
    return out


def truth_table(results: list[Result]) -> Callable[[dict], float]:
    """A ground-truth lookup from evaluated architectures (e.g. a stored table); unknown ones raise KeyError."""
    table = {canonical(r.genotype): r.score for r in results}

    def lookup(spec: dict) -> float:
        key = canonical(spec)
        if key not in table:
            raise KeyError("this architecture has no ground truth in the table; evaluate it, or search only "
                           "among the table's architectures")
        return table[key]

    return lookup
