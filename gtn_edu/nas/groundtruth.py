"""`GroundTruth`: the stored table of real-training results a NAS proxy is judged against.

`benchmarks/nas_groundtruth.py` trains a fixed sample of architectures for real, with two
or more seeds, and writes one JSON; the library ships the CIFAR-10 one
(`gtn_edu/nas/tables/groundtruth_cifar10.json`, read by `GroundTruth.stored()`).
`GroundTruth.load` reads a table back with the search space it was computed in, so a
tutorial or a benchmark scores the same networks with its proxies and compares ranks,
without repeating hours of training:

    >>> truth = GroundTruth.stored("cifar10")                  # doctest: +SKIP
    >>> truth.space, len(truth), truth.seed_to_seed()          # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .space import CellSpace
from .stats import seed_to_seed

__all__ = ["GroundTruth", "TABLES"]

TABLES = Path(__file__).parent / "tables"
"""Where the shipped tables live: `groundtruth_<dataset>.json`."""


@dataclass
class GroundTruth:
    """Real-training scores of a fixed list of architectures, one score list per seed.

    Attributes:
        space: the `CellSpace` the architectures were built and trained in.
        genotypes: the architectures (genotype dicts), in the table's order.
        scores: `{seed: [score of genotype 0, 1, ...]}`, complete seeds only.
        seconds: `{seed: [training seconds of genotype 0, 1, ...]}`.
        settings: how the table was computed (epochs, batch size, images, ...).
        env: device, commit and library versions of the run that computed it.
    """

    space: CellSpace
    genotypes: list[dict]
    scores: dict[int, list[float]]
    seconds: dict[int, list[float]]
    settings: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.genotypes)
        for seed, s in {**self.scores, **self.seconds}.items():
            if len(s) != n:
                raise ValueError(f"seed {seed} has {len(s)} values for {n} architectures")
        if not self.scores:
            raise ValueError("a ground truth needs the scores of at least one complete seed")

    @classmethod
    def load(cls, path: str | os.PathLike) -> GroundTruth:
        """Read a table written by `benchmarks/nas_groundtruth.py`; seeds missing an architecture are left out."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no ground-truth table at {path}: compute one with "
                                    "`python benchmarks/nas_groundtruth.py --data-root <data>` (see its --help)")
        raw = json.loads(path.read_text())
        sp = raw["space"]
        extra = {k: (tuple(sp[k]) if k == "ops" else sp[k]) for k in ("ops", "weight_norm") if k in sp}
        space = CellSpace(tuple(sp["input_shape"]), sp["num_classes"], sp["cells_per_stage"], sp["filters"],
                          sp["num_nodes"], **extra)
        rows = raw["architectures"]
        seeds = sorted({int(s) for r in rows for s in r["accuracy"]})
        complete = [s for s in seeds if all(str(s) in r["accuracy"] for r in rows)]
        return cls(space, [r["genotype"] for r in rows],
                   {s: [r["accuracy"][str(s)] for r in rows] for s in complete},
                   {s: [r["seconds"][str(s)] for r in rows] for s in complete},
                   raw.get("settings", {}), raw.get("env", {}))

    @classmethod
    def stored(cls, dataset: str = "cifar10") -> GroundTruth:
        """The table shipped with the library for `dataset` (see `TABLES`)."""
        path = TABLES / f"groundtruth_{dataset}.json"
        if not path.exists():
            have = sorted(p.stem.removeprefix("groundtruth_") for p in TABLES.glob("groundtruth_*.json"))
            raise FileNotFoundError(f"no stored ground truth for {dataset!r} (stored: {have}); compute one with "
                                    f"`python benchmarks/nas_groundtruth.py --dataset {dataset}` and load its JSON "
                                    "with GroundTruth.load(path)")
        return cls.load(path)

    def __len__(self) -> int:
        return len(self.genotypes)

    @property
    def mean(self) -> list[float]:
        """Each architecture's score averaged over the seeds: the ground truth proxies are ranked against."""
        return [statistics.fmean(vals) for vals in zip(*self.scores.values())]

    def seed_to_seed(self) -> float:
        """Spearman between the seeds' score lists (mean over pairs): the ceiling for one noisy measurement."""
        return seed_to_seed(list(self.scores.values()))

    def seconds_per_training(self) -> float:
        """Median seconds one real training took (the cost column of a proxy table)."""
        return statistics.median(t for ts in self.seconds.values() for t in ts)

    def check_proxy_seeds(self, seeds: Sequence[int]) -> None:
        """Raise ValueError if a proxy's evaluator seed is one of the table's seeds.

        The same seed gives a genotype the same initialisation (and data stream) as the
        ground truth's training of it, so the proxy would be judged partly against itself.
        """
        shared = sorted(set(int(s) for s in seeds) & set(self.scores))
        if shared:
            raise ValueError(f"proxy seed(s) {shared} are ground-truth seeds {sorted(self.scores)}: the proxy would "
                             "initialise every cell as the ground truth did; pick others (e.g. the default "
                             "PROXY_SEEDS, --proxy-seeds 100 101 102)")

    def head(self, n: int) -> GroundTruth:
        """The first `n` architectures only (a smaller run, e.g. a tutorial at its tiny size)."""
        return GroundTruth(self.space, self.genotypes[:n], {s: v[:n] for s, v in self.scores.items()},
                           {s: v[:n] for s, v in self.seconds.items()}, self.settings, self.env)
