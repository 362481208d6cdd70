"""Train a fresh network on exported GTN data with plain PyTorch: nothing from gtn_edu is imported.

    python docs/scripts/train_on_gtn_data.py runs/mnist/gtn_data.npz --data-root ../shared/data

The file (from `gtn-edu export RUN_DIR`) holds T batches `x[t]`, `y[t]` and, for each step,
the learning rate and momentum the GTN learned for it. Training is T steps of
`torch.optim.SGD` with momentum, one batch a step, each step with its own lr and momentum:
exactly eq. (1) of the paper, m <- beta m + g, theta <- theta - alpha m. The network is a
small MLP (flatten, Linear, LeakyReLU(0.1), Linear); `--init FILE` loads its initial
weights from a state dict instead of drawing them. It prints the test accuracy after the
last step, on the dataset named in the file, normalised as the file says.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

DATASETS = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST,
            "cifar10": torchvision.datasets.CIFAR10}


def load_gtn_data(path: str) -> dict:
    """The arrays of an exported file as tensors, and its metadata as a dict."""
    with np.load(path, allow_pickle=False) as f:  # plain arrays: no code runs while loading
        out = {k: torch.from_numpy(f[k].astype(np.float32) if k == "x" else f[k]) for k in ("x", "y", "lr", "momentum")}
        out["meta"] = json.loads(str(f["meta"]))
    return out


def build_model(image_shape: list[int], num_classes: int, hidden: int) -> nn.Module:
    inputs = int(np.prod(image_shape))
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, hidden), nn.LeakyReLU(0.1), nn.Linear(hidden, num_classes))


# --8<-- [start:train]
def train(model: nn.Module, data: dict) -> None:
    """T steps of SGD with momentum, step t on batch t with the file's lr[t] and momentum[t]."""
    optimizer = torch.optim.SGD(model.parameters(), lr=float(data["lr"][0]), momentum=float(data["momentum"][0]))
    for t in range(len(data["x"])):
        for group in optimizer.param_groups:
            group["lr"], group["momentum"] = float(data["lr"][t]), float(data["momentum"][t])
        optimizer.zero_grad()
        F.cross_entropy(model(data["x"][t]), data["y"][t]).backward()  # labels, or soft targets
        optimizer.step()
# --8<-- [end:train]


def test_split(meta: dict, root: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The test images of the file's dataset, scaled to [0, 1] and normalised with the file's mean and std."""
    ds = DATASETS[meta["dataset"]](root, train=False, download=False)
    x = torch.as_tensor(np.asarray(ds.data)).float().div_(255)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # (N, C, H, W)
    mean, std = (torch.tensor(meta["normalisation"][k]).view(1, -1, 1, 1) for k in ("mean", "std"))
    return (x - mean) / std, torch.as_tensor(ds.targets)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return sum(int((model(xb).argmax(1) == yb).sum()) for xb, yb in zip(x.split(256), y.split(256))) / len(y)


def main(argv=None) -> float:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file", help="a .npz written by `gtn-edu export`")
    ap.add_argument("--data-root", required=True, help="folder with the dataset for torchvision (test split)")
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default=None, help="initial weights: a state dict of the model (torch.save)")
    args = ap.parse_args(argv)
    data = load_gtn_data(args.file)
    meta = data["meta"]
    torch.manual_seed(args.seed)
    model = build_model(meta["image_shape"], meta["num_classes"], args.hidden)
    if args.init:
        model.load_state_dict(torch.load(args.init, weights_only=True))
    train(model, data)
    acc = accuracy(model, *test_split(meta, args.data_root))
    print(f"test accuracy after {len(data['x'])} steps: {acc:.4f}")
    return acc


if __name__ == "__main__":
    main()
