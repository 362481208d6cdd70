"""Proxies side by side: score the same architectures with several evaluations, rank against a truth.

The experiment of Figure 3c, for any number of evaluations at once:

    results = score_architectures(truth.space, truth.genotypes, {"gtn": gtn, "synflow": SynFlowEvaluation()})
    rows = proxy_table(results, truth.mean)           # Spearman (all, top half) with CIs, seconds each
    print(markdown_table(rows, truth_seconds=truth.seconds_per_training(), ceiling=truth.seed_to_seed()))

Each evaluation runs through its own `NASEvaluator`, so with a `cache_dir` a stopped run
continues where it stopped and a rerun costs nothing.

Seeds. A proxy judged against a ground truth must not share the truth's initialisations:
`NASEvaluator` initialises a genotype from `(seed, "nas/arch/<digest>")`, so a proxy run
with one of the truth's seeds trains the very network the truth trained, and their
agreement would flatter the proxy. `PROXY_SEEDS` lie apart from the truth's (0, 1), and
`GroundTruth.check_proxy_seeds` refuses an overlap. With several `seeds`,
`score_architectures` averages each architecture's score over as many initialisations
(`mean_over_seeds`); the cost is then the sum of their seconds.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence

from ..arch_space import ArchSpace
from .evaluations import Evaluation
from .evaluator import NASEvaluator, Result, canonical
from .stats import rank_correlations

__all__ = ["PROXY_SEEDS", "score_architectures", "mean_over_seeds", "proxy_table", "markdown_table"]

PROXY_SEEDS = (100, 101, 102)
"""The proxies' evaluator seeds: several initialisations per cell, none of them a ground-truth seed."""


def score_architectures(space: ArchSpace, genotypes: Sequence[dict], evaluations: Mapping[str, Evaluation], *,
                        cache_dir: str | os.PathLike | None = None, seed: int = 0, seeds: Sequence[int] | None = None,
                        progress: bool = True) -> dict[str, list[Result]]:
    """`{name: [Result of genotype 0, 1, ...]}`: every genotype scored by every evaluation.

    Args:
        space: builds the networks (for a stored `GroundTruth`, its `space`).
        genotypes: the architectures, in the ground truth's order.
        evaluations: the proxies, by the name the table shows.
        cache_dir: the evaluators' cache (None: nothing written).
        seed: the evaluators' seed (initialisations and batches), when `seeds` is None.
        seeds: several evaluator seeds (e.g. `PROXY_SEEDS`): each genotype is scored once per
            seed, and its `Result` holds the mean score and the summed seconds (`mean_over_seeds`).
        progress: a progress bar per evaluation and seed.
    """
    seeds = [seed] if seeds is None else list(seeds)
    if len(set(seeds)) < len(seeds):
        raise ValueError(f"seeds {seeds} repeat a seed: the same initialisation would count twice")
    return {name: mean_over_seeds([NASEvaluator(space, ev, cache_dir, seed=s, progress=progress).evaluate(genotypes)
                                   for s in seeds]) for name, ev in evaluations.items()}


def mean_over_seeds(results_per_seed: Sequence[Sequence[Result]]) -> list[Result]:
    """One `Result` per architecture from the results of several seeds (initialisations) of it.

    Args:
        results_per_seed: one list per seed, the architectures in the same order in each.

    Returns:
        Per architecture: the mean score over the seeds, the *sum* of their seconds (the cost
        of scoring it this way), `cached` when every seed's result was.
    """
    if not results_per_seed:
        raise ValueError("mean_over_seeds needs the results of at least one seed")
    n = {len(rs) for rs in results_per_seed}
    if len(n) > 1:
        raise ValueError(f"every seed must score the same architectures, got {sorted(n)} results")
    out = []
    for i, per_seed in enumerate(zip(*results_per_seed)):
        if any(canonical(r.genotype) != canonical(per_seed[0].genotype) for r in per_seed):
            raise ValueError(f"architecture {i} differs between the seeds' results: pass them in the same order")
        out.append(Result(per_seed[0].genotype, statistics.fmean(r.score for r in per_seed),
                          math.fsum(r.seconds for r in per_seed), all(r.cached for r in per_seed)))
    return out


def proxy_table(results: Mapping[str, Sequence[Result]], truth: Sequence[float], *, n_boot: int = 1000,
                seed: int = 0) -> list[dict]:
    """One row per evaluation: Spearman with the truth over all architectures and over its top half.

    Returns:
        `[{"name", "all": RankCorrelation, "top_half": RankCorrelation, "seconds": median
        seconds per architecture, "scores": [...]}, ...]`, in the order of `results`.
    """
    rows = []
    for name, res in results.items():
        if len(res) != len(truth):
            raise ValueError(f"{name!r} scored {len(res)} architectures, the truth has {len(truth)}")
        scores = [r.score for r in res]
        rows.append({"name": name, **rank_correlations(scores, truth, n_boot=n_boot, seed=seed),
                     "seconds": statistics.median(r.seconds for r in res), "scores": scores})
    return rows


def markdown_table(rows: Sequence[dict], *, truth_seconds: float | None = None, ceiling: float | None = None) -> str:
    """The rows of `proxy_table` as a Markdown table, with the truth's cost and seed-to-seed ceiling if given."""
    lines = ["| evaluation | Spearman, all [95% CI] | Spearman, top half [95% CI] | seconds / architecture"
             + (" | cheaper than the truth |" if truth_seconds else " |"),
             "|---|---|---|---|" + ("---|" if truth_seconds else "")]

    def ci(c) -> str:
        return f"{c.rho:.2f} [{c.low:.2f}, {c.high:.2f}]"

    for r in rows:
        line = f"| {r['name']} | {ci(r['all'])} | {ci(r['top_half'])} | {r['seconds']:.2f} |"
        if truth_seconds:
            ratio = truth_seconds / max(r["seconds"], 1e-9)
            line += f" {ratio:,.0f}x |" if ratio >= 10 else f" {ratio:.2g}x |"
        lines.append(line)
    if ceiling is not None or truth_seconds:
        c = "-" if ceiling is None else f"{ceiling:.2f} (seed vs seed)"
        t = "-" if not truth_seconds else f"{truth_seconds:.1f}"
        lines.append(f"| ground truth, another seed | {c} | | {t} |" + (" 1x |" if truth_seconds else ""))
    return "\n".join(lines)
