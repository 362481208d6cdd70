"""Augmentation of real batches: per-image crops and flips, checked against torchvision one image at a time."""

import pytest
import torch
from torchvision.transforms.v2 import functional as TF

from gtn_edu import make_rng
from gtn_edu.augment import RandomCropFlip


def _draws(rng_seed, B, p):
    """The offsets and flips RandomCropFlip draws from a fresh copy of the same stream."""
    rng = make_rng(rng_seed, "test/augment")
    offsets = torch.randint(0, 2 * p + 1, (2, B), generator=rng)
    flips = torch.rand(B, generator=rng) < 0.5
    return offsets, flips


@pytest.mark.parametrize("fill", [0.0, (-1.0, 0.5, 2.0)])
def test_each_image_is_torchvisions_crop_of_its_padded_self(fill):
    B, C, H, W, p = 16, 3, 7, 9, 4
    x = torch.randn(B, C, H, W, dtype=torch.float64)
    out = RandomCropFlip(p, fill=fill)(x, make_rng(0, "test/augment"))
    offsets, flips = _draws(0, B, p)
    fills = torch.as_tensor(fill, dtype=torch.float64).expand(C)
    for b in range(B):
        padded = torch.stack([TF.pad(x[b, c:c + 1], [p], fill=float(fills[c]))[0] for c in range(C)])
        want = TF.crop(padded, int(offsets[0, b]), int(offsets[1, b]), H, W)
        if flips[b]:
            want = TF.horizontal_flip(want)
        assert torch.equal(out[b], want), b
    assert 0 < int(flips.sum()) < B  # both kinds occur in this draw


def test_same_stream_same_batch_and_gradients_pass():
    x = torch.randn(8, 3, 32, 32, requires_grad=True)
    a = RandomCropFlip()(x, make_rng(1, "t"))
    b = RandomCropFlip()(x, make_rng(1, "t"))
    assert torch.equal(a, b) and not torch.equal(a, RandomCropFlip()(x, make_rng(2, "t")))
    a.sum().backward()
    assert x.grad is not None and x.grad.max() <= 1


def test_no_padding_no_flip_is_the_identity_and_bad_input_is_named():
    x = torch.randn(4, 1, 5, 5)
    assert torch.equal(RandomCropFlip(0, flip=False)(x), x)
    with pytest.raises(ValueError, match="B, C, H, W"):
        RandomCropFlip()(x[0])
    with pytest.raises(ValueError, match="channels"):
        RandomCropFlip(fill=(0.0, 1.0))(x)
    with pytest.raises(ValueError, match="padding"):
        RandomCropFlip(-1)


def test_real_batch_loss_augments_from_the_trainers_stream():
    from gtn_edu import MLPLearner, RealBatchLoss
    from gtn_edu.data import Split

    torch.manual_seed(0)
    split = Split(torch.randn(50, 3, 8, 8), torch.arange(50) % 2)
    learner = MLPLearner((3, 8, 8), 2, (4,), batch_norm=False)
    state = learner.init_state()
    plain, aug = RealBatchLoss(split, 16), RealBatchLoss(split, 16, augment=RandomCropFlip())
    lp = plain(learner, [state], make_rng(0, "t"))[0]
    la, la_again = (aug(learner, [state], make_rng(0, "t"))[0] for _ in range(2))
    assert torch.equal(la, la_again) and not torch.equal(la, lp)  # seeded, and the batch did change
