"""Architecture spaces: specs are small JSON values, builds are seeded without global side effects."""

import json

import pytest
import torch

from gtn_edu import ArchSpace, make_rng

SPACES = {"mnist": ArchSpace.mnist((1, 12, 12), 3, channel_ranges=((2, 6), (3, 7)), hidden_range=(4, 9)),
          "cifar": ArchSpace.cifar((3, 8, 8), 3, channel_ranges=((2, 4),) * 5),
          "mlp": ArchSpace.mlp((1, 4, 4), 3, width_range=(2, 9), max_layers=3)}


def _same_learner(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", SPACES)
def test_sample_is_build_of_sample_spec_and_specs_are_json(name):
    space = SPACES[name]
    rng_a, rng_b = make_rng(0, "test"), make_rng(0, "test")
    for _ in range(5):
        spec = space.sample_spec(rng_a)
        assert json.loads(json.dumps(spec)) == spec
        assert _same_learner(space.build(spec, rng_a), space.sample(rng_b))
    assert torch.equal(rng_a.get_state(), rng_b.get_state())


def test_build_rejects_a_spec_of_another_space():
    with pytest.raises(ValueError, match="sample_spec"):
        SPACES["mnist"].build({"widths": [4]})
    with pytest.raises(ValueError, match="conv layers"):
        SPACES["mnist"].build({"channels": [4], "hidden": 5})


def test_sampling_touches_no_global_random_state(monkeypatch):
    """The build is seeded from the rng alone: torch.manual_seed also reseeded every CUDA device."""
    reseeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: reseeded.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: reseeded.append(seed))
    before = torch.random.get_rng_state()
    for space in SPACES.values():
        space.sample(make_rng(1, "test"))
    assert reseeded == [], "sampling a learner reseeded the CUDA generators"
    assert torch.equal(torch.random.get_rng_state(), before)


def test_same_rng_state_gives_the_same_learner_and_another_does_not():
    space = SPACES["mnist"]
    a, b = space.sample(make_rng(0, "x")), space.sample(make_rng(0, "x"))
    c = space.sample(make_rng(1, "x"))
    assert _same_learner(a, b) and not _same_learner(a, c)
