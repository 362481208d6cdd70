"""Random search over the cell space, with cheap deterministic evaluations."""

import pytest
import torch

from gtn_edu.nas import (
    CellSpace,
    Evaluation,
    NASEvaluator,
    compare_searches,
    random_search,
    sample_specs,
    simulate_searches,
)
from gtn_edu.nas.search import truth_table
from gtn_edu.seeding import make_rng


class ParamCount(Evaluation):
    """A deterministic stand-in proxy: the number of weights (no training, milliseconds)."""

    name = "params"
    calls = 0

    def score(self, learner, rng=None):
        ParamCount.calls += 1
        return float(sum(p.numel() for p in learner.parameters()))

    def settings(self):
        return {}


class NegParamCount(ParamCount):
    name = "neg_params"

    def score(self, learner, rng=None):
        return -super().score(learner, rng)


SPACE = CellSpace((3, 8, 8), 10, cells_per_stage=1, filters=4, num_nodes=2)


def test_search_picks_the_best_scored_candidate_from_a_seeded_sample(tmp_path):
    assert sample_specs(SPACE, 4, seed=1) == sample_specs(SPACE, 4, seed=1) != sample_specs(SPACE, 4, seed=2)
    search = random_search(SPACE, ParamCount(), 6, seed=1, cache_dir=tmp_path, progress=False)
    assert [r.genotype for r in search.results] == sample_specs(SPACE, 6, seed=1)
    assert search.best.score == max(r.score for r in search.results)
    assert search.top(2)[0] == search.best and search.top(2)[1].score <= search.best.score
    assert search.seconds == pytest.approx(sum(r.seconds for r in search.results))
    ParamCount.calls = 0
    again = random_search(SPACE, ParamCount(), 6, seed=1, cache_dir=tmp_path, progress=False)
    assert ParamCount.calls == 0 and again.best.genotype == search.best.genotype  # all from the cache
    with pytest.raises(ValueError, match="at least one"):
        sample_specs(SPACE, 0)


def test_compare_searches_judges_proxies_by_the_truth_of_their_pick():
    candidates = {seed: sample_specs(SPACE, 5, seed) for seed in range(2)}
    truth = truth_table(NASEvaluator(SPACE, ParamCount(), progress=False).evaluate(
        [spec for specs in candidates.values() for spec in specs]))
    out = compare_searches(SPACE, {"perfect": ParamCount(), "inverted": NegParamCount()}, truth, n=5,
                           seeds=range(2))
    # a proxy that ranks like the truth picks the best candidate; the inverted one the worst
    assert out["perfect"]["picked_truth"] == out["perfect"]["best_possible"]
    assert out["inverted"]["picked_truth"] == [min(truth(s) for s in candidates[seed]) for seed in range(2)]
    assert out["perfect"]["mean"] > out["inverted"]["mean"] and len(out["inverted"]["seconds"]) == 2
    with pytest.raises(KeyError, match="no ground truth"):
        truth(sample_specs(SPACE, 1, seed=99)[0])


def test_simulated_searches_by_hand():
    truth = [0.1, 0.5, 0.3, 0.9, 0.2]
    scores = {"perfect": [1, 5, 3, 9, 2], "inverted": [-1, -5, -3, -9, -2], "flat": [0, 0, 0, 0, 0]}
    out = simulate_searches(scores, truth, n=3, seeds=range(40), seconds={"perfect": 2.0})
    for seed, (best, picked_bad, picked_flat, sample_mean) in enumerate(zip(
            out["perfect"]["best_possible"], out["inverted"]["picked_truth"], out["flat"]["picked_truth"],
            out["flat"]["sample_mean"])):
        idx = torch.randperm(5, generator=make_rng(seed, "nas/pool-search"))[:3].tolist()
        drawn = [truth[i] for i in idx]
        assert best == max(drawn) and picked_bad == min(drawn)  # the same draw for every proxy
        assert picked_flat == drawn[0]  # equal scores: the first drawn wins
        assert sample_mean == pytest.approx(sum(drawn) / 3)
    assert out["perfect"]["picked_truth"] == out["perfect"]["best_possible"]
    assert out["perfect"]["mean"] > out["flat"]["mean"] > out["inverted"]["mean"]
    assert out["perfect"]["seconds"] == [6.0] * 40 and out["flat"]["seconds"] == [0.0] * 40
    # with n = the whole pool every search sees everything: the perfect proxy always finds 0.9
    assert simulate_searches(scores, truth, n=5, seeds=range(3))["perfect"]["picked_truth"] == [0.9] * 3
    with pytest.raises(ValueError, match="1 <= n <= 5"):
        simulate_searches(scores, truth, n=6)
    with pytest.raises(ValueError, match="has 2 scores"):
        simulate_searches({"short": [1, 2]}, truth, n=2)
