"""Random search over the cell space, with cheap deterministic evaluations."""

import pytest

from gtn_edu.nas import CellSpace, Evaluation, NASEvaluator, compare_searches, random_search, sample_specs
from gtn_edu.nas.search import truth_table


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
