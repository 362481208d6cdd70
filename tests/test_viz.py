"""Figures: the image grids show what they say they show."""

import pytest
import torch

from gtn_edu import Curriculum, Teacher
from gtn_edu.viz import class_images, curriculum_images, save_image_grid


def _teacher():
    torch.manual_seed(0)
    return Teacher((3, 8, 8), 10, latent_dim=4, hidden=8, channels=4, conv_channels=4)


def test_class_images_put_one_class_in_each_row():
    teacher, curriculum = _teacher(), Curriculum.full(3, 20, 10, latent_dim=4)
    grid = class_images(teacher, curriculum, per_class=5)
    assert grid.shape == (50, 3, 8, 8) and grid.min() >= 0 and grid.max() <= 1
    batches = teacher.batches(curriculum)
    x = torch.cat([batches.batch(t, batches.tensors)[0] for t in range(3)])
    y = curriculum.labels.flatten()
    for k in (0, 3, 9):  # row k holds class k's images in curriculum order (each stretched to [0, 1])
        want = x[y == k][:5]
        lo, hi = want.amin(dim=(1, 2, 3), keepdim=True), want.amax(dim=(1, 2, 3), keepdim=True)
        torch.testing.assert_close(grid[5 * k:5 * k + 5], (want - lo) / (hi - lo))


def test_class_images_ask_for_no_more_than_the_curriculum_holds():
    with pytest.raises(ValueError, match="fewer than per_class=7"):
        class_images(_teacher(), Curriculum.full(3, 20, 10, latent_dim=4), per_class=7)


def test_curriculum_images_rows_are_inner_steps(tmp_path):
    teacher, curriculum = _teacher(), Curriculum.full(3, 20, 10, latent_dim=4)
    images = curriculum_images(teacher, curriculum, per_step=10)
    assert images.shape == (30, 3, 8, 8)
    path = save_image_grid(images, tmp_path / "g.png")
    assert path.stat().st_size > 100
