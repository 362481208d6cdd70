"""The four curriculum variants of section 3.2."""

import pytest
import torch

from gtn_edu import Curriculum


def test_labels_are_balanced_and_fixed():
    cur = Curriculum.full(4, 20, 10, latent_dim=3)
    z, y = cur.sample()
    assert z.shape == (4, 20, 3) and y.shape == (4, 20)
    for row in y:
        assert torch.bincount(row, minlength=10).tolist() == [2] * 10


def test_full_is_fixed_and_learned():
    cur = Curriculum.full(3, 10, 10, latent_dim=2)
    z1, _ = cur.sample()
    z2, _ = cur.sample()
    assert torch.equal(z1, z2)
    z1.sum().backward()
    assert cur.codes.grad is not None


def test_shuffled_batch_permutes_whole_batches():
    cur = Curriculum.shuffled_batch(5, 10, 10, latent_dim=2)
    z, y = cur.sample(torch.Generator().manual_seed(1))
    rows = {tuple(r.flatten().tolist()) for r in cur.codes.detach()}
    assert {tuple(r.flatten().tolist()) for r in z.detach()} == rows


def test_all_shuffled_permutes_codes_with_their_labels():
    cur = Curriculum.all_shuffled(3, 10, 10, latent_dim=2)
    z, y = cur.sample(torch.Generator().manual_seed(0))
    flat = cur.codes.detach().reshape(-1, 2)
    labels = cur.labels.reshape(-1)
    for code, label in zip(z.detach().reshape(-1, 2), y.reshape(-1)):
        i = (flat == code).all(1).nonzero().item()
        assert labels[i] == label
    assert not torch.equal(z.detach(), cur.codes.detach())


def test_no_curriculum_draws_fresh_codes():
    cur = Curriculum.no_curriculum(2, 10, 10, latent_dim=2)
    assert list(cur.parameters()) == []
    assert not torch.equal(cur.sample()[0], cur.sample()[0])


def test_unknown_variant():
    with pytest.raises(ValueError, match="choose one of"):
        Curriculum(2, 10, 10, variant="random")
