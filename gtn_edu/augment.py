"""Augmentation of real batches on the device: random crops and horizontal flips (appendix A.2).

For CIFAR-10 the paper augments the real images the meta-loss is computed on: a random
crop of the image padded by 4 pixels on each side, and a horizontal flip with probability
1/2. `RandomCropFlip` does both for a whole batch at once, a different crop and flip for
every image, with two `gather`s and a `where`: no Python loop over images and no host
round trip, so it costs a few kernel launches per meta-loss on a GPU. Its random numbers
come from the `rng` it is given (the trainer's data stream), so a seeded run, and a
resumed one, sees the same augmented batches.

Why not `torchvision.transforms.v2.RandomCrop` on the batch: a v2 transform draws one set
of parameters per call, so a batched tensor gets the *same* crop for every image; a crop
per image would take one call per image.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["RandomCropFlip"]


class RandomCropFlip:
    """Pad each image by `padding`, crop it back at a random offset, flip half of them.

    Args:
        padding: pixels added on each side before cropping (appendix A.2: 4); 0 disables cropping.
        flip: flip each image horizontally with probability 1/2.
        fill: value of the padding, one number or one per channel, in the units of the
            (normalised) images. 0 is the mean colour of normalised data; torchvision's
            `RandomCrop(32, padding=4)` before normalisation pads with black, which is
            `-mean / std` per channel afterwards.

    Examples:
        >>> augment = RandomCropFlip(padding=4)
        >>> x_aug = augment(x, rng)  # doctest: +SKIP
    """

    def __init__(self, padding: int = 4, *, flip: bool = True, fill: float | Sequence[float] = 0.0) -> None:
        if padding < 0:
            raise ValueError(f"padding must be >= 0 pixels, got {padding}")
        self.padding, self.flip = int(padding), bool(flip)
        self.fill = torch.as_tensor(fill, dtype=torch.float64).flatten()

    def __call__(self, x: Tensor, rng: torch.Generator | None = None) -> Tensor:
        """A randomly cropped and flipped copy of `x` (B, C, H, W); `rng` draws the offsets and flips."""
        if x.dim() != 4:
            raise ValueError(f"RandomCropFlip needs a batch of images (B, C, H, W), got shape {tuple(x.shape)}")
        B, C, H, W = x.shape
        if self.fill.numel() not in (1, C):
            raise ValueError(f"fill has {self.fill.numel()} values but the images have {C} channels")
        dev = rng.device if rng is not None else x.device
        out = x
        if self.padding:
            p = self.padding
            fill = self.fill.to(x.device, x.dtype).view(1, -1, 1, 1)
            padded = fill.expand(B, C, H + 2 * p, W + 2 * p).clone()  # borders = fill
            padded[:, :, p:p + H, p:p + W] = x
            offsets = torch.randint(0, 2 * p + 1, (2, B), generator=rng, device=dev).to(x.device)
            rows = (offsets[0].view(B, 1) + torch.arange(H, device=x.device)).view(B, 1, H, 1)
            cols = (offsets[1].view(B, 1) + torch.arange(W, device=x.device)).view(B, 1, 1, W)
            out = padded.gather(2, rows.expand(B, C, H, W + 2 * p))  # rows of each image's crop
            out = out.gather(3, cols.expand(B, C, H, W))               # then its columns
        if self.flip:
            flipped = (torch.rand(B, generator=rng, device=dev) < 0.5).to(x.device).view(B, 1, 1, 1)
            out = torch.where(flipped, out.flip(-1), out)
        return out

    def __repr__(self) -> str:
        return f"RandomCropFlip(padding={self.padding}, flip={self.flip}, fill={self.fill.tolist()})"
