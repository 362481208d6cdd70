"""The two baselines a GTN is compared with, as teachers: real data, and distilled images.

Both share `BaseTeacher`'s interface (`batches(curriculum, rng)`), so the same
`MetaTrainer`, evaluation and NAS code run them beside the GTN:

* `RealData`: random batches of real training images; nothing is learned but the inner
  lr and momentum (the paper's "real data" control, tuned the same way as the GTN);
* `DistilledData`: one learned image per (step, slot) with fixed labels, dataset
  distillation (Wang et al., 2018), the learned-data baseline of the paper's section 3.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .checks import balanced, sizes
from .checks import image_shape as check_image_shape
from .curriculum import Curriculum
from .teacher import BaseTeacher, TensorBatches

__all__ = ["RealData", "DistilledData"]


class RealData(BaseTeacher):
    """Baseline: random batches of real training data; nothing is learned.

    Args:
        x: (N, C, H, W) training images (normalised).
        y: (N,) labels.
    """

    def __init__(self, x: Tensor, y: Tensor) -> None:
        super().__init__()
        if len(x) != len(y) or not len(x):
            raise ValueError(f"RealData needs x and y of one length, at least one example; got {len(x)} and {len(y)}")
        self.register_buffer("x", x, persistent=False)
        self.register_buffer("y", y, persistent=False)

    def batches(self, curriculum: Curriculum, rng: torch.Generator | None = None) -> TensorBatches:
        """T random batches of B real examples (the curriculum gives only T and B)."""
        T, B = curriculum.steps, curriculum.batch_size
        dev = rng.device if rng is not None else self.x.device
        idx = torch.randint(len(self.x), (T, B), generator=rng, device=dev).to(self.x.device)
        return TensorBatches(T, (), lambda t, _: self.x[idx[t]], self.y[idx])


class DistilledData(BaseTeacher):
    """Baseline: dataset distillation, a learned image per (step, slot) with fixed labels.

    Args:
        image_shape: (C, H, W).
        steps: inner steps T.
        batch_size: images per step B (a multiple of `num_classes`).
        num_classes: number of classes.
    """

    def __init__(self, image_shape: tuple[int, int, int], steps: int, batch_size: int,
                 num_classes: int = 10) -> None:
        super().__init__()
        check_image_shape("DistilledData", image_shape)
        sizes("DistilledData", steps=steps, batch_size=batch_size, num_classes=num_classes)
        balanced(batch_size, num_classes)
        self.curriculum_shape = (steps, batch_size, num_classes)
        self.images = nn.Parameter(torch.randn(steps, batch_size, *image_shape))  # (T, B, C, H, W)
        self.register_buffer("labels", torch.arange(batch_size).remainder(num_classes).repeat(steps, 1))

    def batches(self, curriculum: Curriculum | None = None, rng: torch.Generator | None = None
                ) -> TensorBatches:
        """The learned images in their fixed order."""
        if curriculum is not None and (curriculum.steps, curriculum.batch_size,
                                       curriculum.num_classes) != self.curriculum_shape:
            got = (curriculum.steps, curriculum.batch_size, curriculum.num_classes)
            raise ValueError(f"DistilledData was built for (steps, batch_size, num_classes)="
                             f"{self.curriculum_shape} but the curriculum has {got}")
        return TensorBatches(self.curriculum_shape[0], (self.images,), lambda t, ts: ts[0][t], self.labels,
                             source=self)
