"""Every random stream comes from (seed, purpose): purposes never share a stream."""

import pytest
import torch

from gtn_edu import ArchSpace, Curriculum, RealData, UnrolledSGD, derive_seed, few_step_accuracy, make_rng
from gtn_edu.data import Split
from gtn_edu.seeding import PURPOSES


def test_streams_are_distinct_across_seeds_and_purposes():
    seeds = {derive_seed(s, p) for s in range(2000) for p in PURPOSES}
    assert len(seeds) == 2000 * len(PURPOSES)
    assert all(0 <= s < 2**63 for s in seeds)


def test_streams_are_stable_and_validated():
    assert derive_seed(0, "train/arch") == derive_seed(0, "train/arch")
    assert make_rng(3, "eval/data").initial_seed() == derive_seed(3, "eval/data")
    with pytest.raises(ValueError, match="purpose"):
        derive_seed(0, "")
    with pytest.raises(TypeError, match="int"):
        derive_seed(0.5, "train/arch")


def test_evaluation_draws_architectures_and_data_from_different_streams():
    """evaluate.py seeded its architecture and data generators with the same integer."""
    seen = {}

    class Spy(RealData):
        def batches(self, curriculum, rng=None):
            seen["data"] = rng.initial_seed()
            return super().batches(curriculum, rng)

    class SpySpace(type(ArchSpace.mlp())):
        def sample(self, rng=None):
            seen["arch"] = rng.initial_seed()
            return super().sample(rng)

    x, y = torch.randn(40, 1, 4, 4), torch.arange(40) % 2
    space = SpySpace((1, 4, 4), 2, width_range=(3, 5))
    few_step_accuracy(Spy(x, y), Curriculum.no_curriculum(2, 4, 2), UnrolledSGD(), space, Split(x, y),
                      n_learners=1, seed=7)
    assert seen["arch"] != seen["data"]


def test_seeded_draws_from_the_purpose_stream_and_restores_the_global_generator():
    """`seeded(seed, purpose)`: what draws from torch's global generator inside it draws the
    stream (seed, purpose); outside, the global generator continues as if nothing happened."""
    from gtn_edu.seeding import derive_seed, seeded

    torch.manual_seed(7)
    expected_after = torch.rand(3)
    torch.manual_seed(7)
    with seeded(0, "init/teacher"):
        inside = torch.rand(3)
    assert torch.equal(torch.rand(3), expected_after)
    assert torch.equal(inside, torch.rand(3, generator=torch.Generator().manual_seed(derive_seed(0, "init/teacher"))))
    with seeded(1, "init/teacher"):
        assert not torch.equal(torch.rand(3), inside)
