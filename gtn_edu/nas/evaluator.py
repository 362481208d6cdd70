"""`NASEvaluator`: score a list of architectures with one `Evaluation`, with a resumable disk cache.

For every genotype the evaluator builds a fresh learner (initialised from a stream of its
own), hands it to `evaluation.score`, and records the score and the seconds it took (the
cost column of a proxy comparison).

Seeding. A genotype's streams depend on the run's `seed` and on the genotype alone: with
`digest` the SHA-256 of its canonical JSON, the initialisation comes from
`make_rng(seed, "nas/arch/<digest>")` and `score`'s random numbers (batches, shuffles) from
`make_rng(seed, "nas/data/<digest>")`. A genotype therefore scores the same wherever it
sits in the list, in a resumed run, or on its own.

Cache. One JSON-lines file per evaluation setting and seed,

    <cache_dir>/<name>-<key>-seed<seed>.jsonl   one line per architecture:
        {"genotype": {...}, "score": 0.41, "seconds": 12.3}
    <cache_dir>/<name>-<key>.json               the settings and the space, for people to read

where `key` hashes the evaluation's name, its `settings()` and the search space's settings
(the same genotype is a different network at another N or F). A line is appended and
flushed after every architecture, so an interrupted run loses at most the one in flight
and the next run skips what is done. A line without a valid record (cut short by a kill, not
UTF-8, a field missing or out of range: a genotype not a dict, a score not a number or NaN,
seconds not finite and >= 0) is dropped, with a warning, and evaluated again. A NaN score is
refused (ValueError) before it is written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..arch_space import ArchSpace
from ..seeding import make_rng
from .evaluations import Evaluation

__all__ = ["NASEvaluator", "Result", "canonical"]


def canonical(spec) -> str:
    """The genotype's canonical JSON (sorted keys, no spaces): its cache key and seed source."""
    spec = spec.to_dict() if hasattr(spec, "to_dict") else spec
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def _sha(text: str, n: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:n]


@dataclass
class Result:
    """One architecture's evaluation.

    Attributes:
        genotype: the architecture's spec, as plain JSON (`Genotype.to_dict()` for cells).
        score: what the evaluation returned (higher is better): a number, never NaN (-inf can be).
        seconds: wall-clock time to build and score it (from the run that computed it).
        cached: read from the cache (or a duplicate in the list) rather than computed now.
    """

    genotype: dict
    score: float
    seconds: float
    cached: bool = False


def _record(genotype, score, seconds) -> Result:
    """A cache record as a `Result`; ValueError, naming the genotype, for a field out of range."""
    if not isinstance(genotype, dict):
        raise ValueError(f"a genotype must be a dict (its spec's JSON), got {genotype!r}")
    if type(score) not in (int, float) or math.isnan(score):  # ±inf is a result (NASWOT's singular kernel)
        raise ValueError(f"genotype {canonical(genotype)}: score must be a number, not NaN, got {score!r}")
    if type(seconds) not in (int, float) or not 0 <= seconds < math.inf:
        raise ValueError(f"genotype {canonical(genotype)}: seconds must be finite and >= 0, got {seconds!r}")
    return Result(genotype, float(score), float(seconds))


class NASEvaluator:
    """Score architectures of `space` with `evaluation`, caching every score on disk.

    Args:
        space: builds each genotype's learner (`space.build(spec, rng)`), e.g. a `CellSpace`.
        evaluation: the `Evaluation` to score with.
        cache_dir: folder for the JSON-lines cache (None: no cache, nothing written).
        seed: the run's seed, from which every genotype's streams derive.
        progress: show a tqdm progress bar.

    Examples:
        >>> evaluator = NASEvaluator(space, GTNEvaluation.from_arm(arm, data.val), "runs/nas")  # doctest: +SKIP
        >>> results = evaluator.evaluate([space.sample_spec(rng) for _ in range(800)])      # doctest: +SKIP
    """

    def __init__(self, space: ArchSpace, evaluation: Evaluation, cache_dir: str | os.PathLike | None = None,
                 seed: int = 0, progress: bool = True) -> None:
        self.space, self.evaluation, self.seed, self.progress = space, evaluation, seed, progress
        space_settings = dataclasses.asdict(space) if dataclasses.is_dataclass(space) else {"repr": repr(space)}
        self.description = {"name": evaluation.name, "settings": evaluation.settings(),
                            "space": {"type": type(space).__name__, **space_settings}}
        self.key = _sha(json.dumps(self.description, sort_keys=True, default=str))
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", evaluation.name)
        self.cache_path = None if cache_dir is None else Path(cache_dir) / f"{name}-{self.key}-seed{seed}.jsonl"

    def rngs(self, spec) -> tuple[torch.Generator, torch.Generator]:
        """The genotype's (initialisation, data) streams; they depend on the seed and the genotype only."""
        digest = _sha(canonical(spec), 32)
        return make_rng(self.seed, f"nas/arch/{digest}"), make_rng(self.seed, f"nas/data/{digest}")

    def evaluate_one(self, spec) -> Result:
        """Build and score one genotype, bypassing the cache; ValueError if the score is NaN."""
        arch_rng, data_rng = self.rngs(spec)
        start = time.perf_counter()
        learner = self.space.build(spec, arch_rng)
        score = float(self.evaluation.score(learner, data_rng))
        if math.isnan(score):
            raise ValueError(f"{self.evaluation.name} scored genotype {canonical(spec)} as NaN; a NaN is not cached: "
                             "fix the evaluation (a diverged training?) or leave the genotype out")
        return Result(json.loads(canonical(spec)), score, time.perf_counter() - start)

    def load_cache(self) -> dict[str, Result]:
        """The cached results by canonical genotype; a bad line is dropped from the file, with a warning."""
        if self.cache_path is None or not self.cache_path.exists():
            return {}
        done, good, bad = {}, [], []
        for i, line in enumerate(self.cache_path.read_bytes().split(b"\n"), 1):
            if not line.strip():
                continue
            try:  # a bad byte (UnicodeDecodeError), bad JSON or a bad field (ValueError) drops this line only
                rec = json.loads(line.decode("utf-8", errors="strict"))
                result = _record(rec["genotype"], rec["score"], rec["seconds"])
                done[canonical(result.genotype)] = dataclasses.replace(result, cached=True)
                good.append(line)
            except (ValueError, KeyError, TypeError):
                bad.append(i)
        if bad:
            warnings.warn(f"{self.cache_path}: skipped unreadable line(s) {bad} (a run killed mid-write, or an "
                          "edited file?); those architectures will be evaluated again", RuntimeWarning, stacklevel=2)
            tmp = self.cache_path.with_name(self.cache_path.name + ".tmp")
            tmp.write_bytes(b"".join(g + b"\n" for g in good))
            os.replace(tmp, self.cache_path)  # rewrite without them, so appends start on a clean line
        return done

    def prefill(self, results: Sequence[Result]) -> int:
        """Write scores computed elsewhere (e.g. a stored table's rows) into the cache; returns how many were new.

        The caller vouches that they are this evaluator's scores: the same evaluation
        settings, space and seed. Genotypes already in the cache keep their cached line.
        """
        if self.cache_path is None:
            raise ValueError("prefill writes into the cache: make the NASEvaluator with a cache_dir")
        # every record checked (no NaN score, seconds finite and >= 0) before any is written
        records = [_record(json.loads(canonical(r.genotype)), float(r.score), float(r.seconds)) for r in results]
        done, added = self.load_cache(), 0
        with self._open_cache() as file:
            for r in records:
                key = canonical(r.genotype)
                if key not in done:
                    done[key] = r
                    file.write(json.dumps({"genotype": r.genotype, "score": r.score, "seconds": r.seconds}) + "\n")
                    added += 1
        return added

    def _open_cache(self):
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        about = self.cache_path.parent / f"{self.cache_path.name.rsplit('-seed', 1)[0]}.json"
        if not about.exists():
            about.write_text(json.dumps(self.description, indent=2, default=str) + "\n")
        file = self.cache_path.open("a")
        if file.tell() and not self.cache_path.read_bytes().endswith(b"\n"):
            file.write("\n")  # a complete last record that lost its newline: start a line of our own
        return file

    def evaluate(self, specs: Sequence) -> list[Result]:
        """One `Result` per spec, in order: cached ones read back, the others computed and appended."""
        done = self.load_cache()
        file = self._open_cache() if self.cache_path is not None else None
        results = []
        try:
            bar = tqdm(specs, desc=f"NAS {self.evaluation.name}", disable=not self.progress, dynamic_ncols=True)
            for spec in bar:
                key = canonical(spec)
                if key in done:
                    results.append(dataclasses.replace(done[key], cached=True))
                    continue
                result = done[key] = self.evaluate_one(spec)
                results.append(result)
                if file is not None:
                    file.write(json.dumps({"genotype": result.genotype, "score": result.score,
                                           "seconds": result.seconds}) + "\n")
                    file.flush()
                bar.set_postfix(score=f"{result.score:.4g}", seconds=f"{result.seconds:.1f}")
        finally:
            if file is not None:
                file.close()
        return results
