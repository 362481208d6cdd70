r"""Zero-cost proxies: score an architecture at initialisation, without training it.

Two published baselines for the cheap-evaluation question GTN answers (section 3.4), to
set beside `GTNEvaluation` in a rank-correlation table. Neither looks at a label.

**SynFlow** (Tanaka et al., 2020; as a NAS proxy, Abdelfattah et al., 2021). Make the
network linear and positive: every parameter $\theta$ becomes $|\theta|$ (on a float64
copy), feed one input of all ones, and sum the output, $R = \mathbf 1^\top f(\mathbf 1; |\theta|)$.
The score sums every parameter's *synaptic saliency*:

$$ S = \sum_\theta \left| \theta \odot \frac{\partial R}{\partial \theta} \right|. $$

**NASWOT** (Mellor et al., 2021). For a batch of N real images, each image gets a binary
code: at every activation site, which units are positive. Images the network separates
early get different codes. With $N_A$ units in all and $d_H$ the Hamming distance,

$$ K_{ij} = N_A - d_H(c_i, c_j), \qquad S = \log |\det K|. $$
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ..learner import Learner
from ..nn import LearnerBatchNorm
from .evaluations import Evaluation, fingerprint
from .network import CellNetwork
from .ops import ConvBN, FactorizedReduce

__all__ = ["SynFlowEvaluation", "NASWOTEvaluation"]


class SynFlowEvaluation(Evaluation):
    r"""SynFlow: the summed $|\theta \odot \partial R / \partial \theta|$ of the network made positive.

    BatchNorm. `LearnerBatchNorm` normalises with batch statistics in training mode, and
    on a batch of identical all-ones inputs every channel's variance is zero (the output
    would be $\beta$ alone and the gradient to everything below it zero, or NaN). As
    Abdelfattah et al. do (their `bn=False`), BatchNorm is taken out: the copy runs in
    eval mode with its statistics set to mean 0, variance 1, so each BN computes
    $|\gamma| x / \sqrt{1 + \epsilon} + |\beta|$, a positive affine map that keeps the
    network positive; no module is replaced or patched, and $\gamma, \beta$ still score.
    With weight normalisation, $W = |g|\,|V| / \lVert V \rVert$ is positive too.

    The score is deterministic (no data, no `rng`): the same learner always scores the
    same, whatever the input data, and it is unchanged when any parameter changes sign.
    It grows geometrically with depth; float64 holds it for the paper's networks.

    Args:
        device: where to compute (the learner is copied there; the original is not touched).
    """

    name = "synflow"

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)

    def score(self, learner: Learner, rng: torch.Generator | None = None) -> float:
        """S for `learner` at its current weights."""
        net = copy.deepcopy(learner).to(self.device, torch.float64).eval()
        with torch.no_grad():
            for p in net.parameters():
                p.abs_()  # theta -> |theta|: a positive network
            for m in net.modules():
                if isinstance(m, LearnerBatchNorm):  # BN as a positive affine map (see above)
                    m.running_mean.zero_()
                    m.running_var.fill_(1.0)
        params = [p for p in net.parameters() if p.requires_grad]
        ones = torch.ones(1, *learner.input_shape, dtype=torch.float64, device=self.device)
        R = net(ones).sum()  # R = 1^T f(1; |theta|)
        grads = torch.autograd.grad(R, params, allow_unused=True)
        with torch.no_grad():
            return float(sum((p * g).abs().sum() for p, g in zip(params, grads) if g is not None))

    def settings(self) -> dict:
        """How the score is computed (fixed here; a subclass that changes it should say so)."""
        return {"dtype": "float64", "batch_norm": "affine"}


class NASWOTEvaluation(Evaluation):
    r"""NASWOT: $\log|\det K|$ of the images' activation-pattern kernel (Mellor et al., 2021).

    Activation sites. The LeakyReLUs of this library are functions (`F.leaky_relu`), not
    modules, so there is nothing to hook on the activation itself. Every LeakyReLU of a
    `CellNetwork` is the first thing a `ConvBN` or `FactorizedReduce` does to its input,
    or the last step of the network, after the last cell. So a forward pre-hook on each
    `ConvBN` and `FactorizedReduce` sees exactly what its LeakyReLU receives, and a
    forward hook on the last cell sees what the final one receives. LeakyReLU keeps the
    sign, so the code "unit > 0" reads the same before as after it. Other learners
    (`ConvLearner`, `MLPLearner`) apply LeakyReLU right after each `LearnerBatchNorm`:
    their sites are the BN outputs. Override `sites` for another learner.

    The network runs in training mode (batch statistics), as it would on its first step.
    Two images with identical codes make K singular: the score is then -inf.

    Args:
        images: the batch of N real images (e.g. `val.x[:128]`); its device is where the
            score is computed.
    """

    name = "naswot"

    def __init__(self, images: Tensor) -> None:
        if images.dim() < 2 or len(images) < 2:
            raise ValueError(f"NASWOT needs a batch of at least 2 images, got shape {tuple(images.shape)}")
        self.images = images

    def sites(self, learner: Learner) -> list[tuple[nn.Module, str]]:
        """(module, "input" or "output"): tensors whose signs are those of the learner's activations."""
        if isinstance(learner, CellNetwork):
            blocks = [(m, "input") for m in learner.modules() if isinstance(m, (ConvBN, FactorizedReduce))]
            return blocks + [(learner.cells[-1], "output")]
        return [(m, "output") for m in learner.modules() if isinstance(m, LearnerBatchNorm)]

    @torch.no_grad()
    def kernel(self, learner: Learner) -> tuple[Tensor, int]:
        """K (N, N), float64, and $N_A$, the number of activation units per image (K's diagonal)."""
        n = len(self.images)
        K = torch.zeros(n, n, dtype=torch.float64, device=self.images.device)  # (N, N)
        units = [0]

        def record(a: Tensor) -> None:
            c = (a > 0).flatten(1).to(torch.float64)  # (N, units at this site): the binary codes
            K.add_(c @ c.T + (1 - c) @ (1 - c).T)  # agreements: N_A - Hamming distance, summed over sites
            units[0] += c.shape[1]

        hooks = [m.register_forward_pre_hook(lambda _, args: record(args[0])) if where == "input" else
                 m.register_forward_hook(lambda _, args, out: record(out)) for m, where in self.sites(learner)]
        try:
            learner.to(self.images.device).train()(self.images)
        finally:
            for h in hooks:
                h.remove()
            for m in learner.modules():
                if isinstance(m, LearnerBatchNorm):
                    m.last_stats = None
        return K, units[0]

    def score(self, learner: Learner, rng: torch.Generator | None = None) -> float:
        r"""$\log|\det K|$ (via `slogdet`: K's determinant overflows float64 for real networks)."""
        K, _ = self.kernel(learner)
        return float(torch.linalg.slogdet(K).logabsdet)

    def settings(self) -> dict:
        """N and a fingerprint of the images."""
        return {"batch": len(self.images), "images": fingerprint(self.images)}
