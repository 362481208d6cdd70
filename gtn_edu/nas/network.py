r"""A `Genotype`'s two cells stacked into a CNN by NAO's blueprint (Luo et al., 2018; section 3.3).

    stem: 3x3 conv to F filters -> BN
    stage 1: N normal cells, F filters      (H x W)
    reduction cell, 2F filters               (H/2)
    stage 2: N normal cells, 2F filters
    reduction cell, 4F filters               (H/4)
    stage 3: N normal cells, 4F filters
    LeakyReLU -> global average pool -> linear classifier

Cell $k$ reads the outputs of cells $k-2$ and $k-1$ (the stem's output stands in for both
before the first cell). Before its nodes run, each input is brought to the cell's width
and resolution: by `FactorizedReduce` when it comes from before a reduction (twice the
resolution), by a 1x1 `ConvBN` when only its width differs, else as it is. The cell's
output concatenates every node and cell input that no node reads (`Genotype.unused`,
NAO's rule) and a 1x1 `ConvBN` brings the concatenation back to the cell's width.

Search evaluation uses N=3, F=32; final training N=6, F=36 (NAO's values, `NASConfig`).
Every BatchNorm is a `LearnerBatchNorm`, so the network trains under `UnrolledSGD` in both
modes, and every parameter lies on a path to the logits (as the inner step's gradient needs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..learner import Learner
from ..nn import LEAKY_SLOPE, LearnerBatchNorm, WNConv2d, WNLinear
from .genotype import Genotype, Node
from .ops import OPERATIONS, ConvBN, FactorizedReduce

__all__ = ["Cell", "CellNetwork"]


class Cell(nn.Module):
    """One normal or reduction cell: $h_i = \\text{op}_a(h_a) + \\text{op}_b(h_b)$ for its nodes.

    Args:
        nodes: the cell's nodes `(input_a, op_a, input_b, op_b)` (from a `Genotype`).
        in_channels: channels of the two cell inputs (cell k-2's output, cell k-1's output).
        channels: C, the cell's width (of every node and of its output).
        reduction: a reduction cell: ops on the cell inputs use stride 2, so the output has
            half the resolution.
        reduce_input0: input 0 has twice input 1's resolution (the cell follows a reduction
            cell) and goes through `FactorizedReduce`.
        weight_norm: weight-normalise every conv.
    """

    def __init__(self, nodes: tuple[Node, ...], in_channels: tuple[int, int], channels: int, *, reduction: bool,
                 reduce_input0: bool, weight_norm: bool) -> None:
        super().__init__()
        self.nodes, self.reduction = tuple(nodes), reduction
        self.out_states = Genotype.unused(self.nodes)
        c0, c1 = in_channels
        self.pre0 = (FactorizedReduce(c0, channels, weight_norm) if reduce_input0 else
                     ConvBN(c0, 1, 1, weight_norm, out_channels=channels) if c0 != channels else nn.Identity())
        self.pre1 = ConvBN(c1, 1, 1, weight_norm, out_channels=channels) if c1 != channels else nn.Identity()
        self.ops = nn.ModuleList()  # ops[2j], ops[2j+1]: node j's two operations
        for a, op_a, b, op_b in self.nodes:
            for inp, op in ((a, op_a), (b, op_b)):
                stride = 2 if reduction and inp < 2 else 1
                self.ops.append(OPERATIONS[op](channels, stride, weight_norm))
        # A reduction cell's unread input is at full resolution: reduce it before the concatenation.
        self.skip_reduce = nn.ModuleDict({str(i): FactorizedReduce(channels, channels, weight_norm)
                                          for i in self.out_states if reduction and i < 2})
        self.project = ConvBN(len(self.out_states) * channels, 1, 1, weight_norm, out_channels=channels)

    def forward(self, s0: Tensor, s1: Tensor) -> Tensor:  # (B, c0, ., .), (B, c1, H, W) -> (B, C, H', W')
        """The cell's output from the outputs of cells k-2 (`s0`) and k-1 (`s1`)."""
        states = [self.pre0(s0), self.pre1(s1)]
        for j, (a, _, b, _) in enumerate(self.nodes):
            states.append(self.ops[2 * j](states[a]) + self.ops[2 * j + 1](states[b]))  # h_i = op_a(h_a) + op_b(h_b)
        outs = [self.skip_reduce[str(i)](states[i]) if str(i) in self.skip_reduce else states[i]
                for i in self.out_states]
        return self.project(torch.cat(outs, dim=1))


class CellNetwork(Learner):
    """The blueprint network of a genotype: stem, 3 stages of N normal cells with 2 reduction cells, GAP, FC.

    Args:
        genotype: the two cells (a `Genotype`, or its `to_dict()` form).
        input_shape: (C, H, W) of the inputs.
        num_classes: outputs.
        cells_per_stage: N, normal cells per stage (search: 3, final training: 6).
        filters: F, the first stage's width; each reduction cell doubles it (search: 32, final: 36).
        weight_norm: weight-normalise every conv and the classifier.
    """

    def __init__(self, genotype: Genotype | dict, input_shape: tuple[int, int, int], num_classes: int,
                 cells_per_stage: int = 3, filters: int = 32, *, weight_norm: bool = True) -> None:
        super().__init__(input_shape, num_classes)
        if len(self.input_shape) != 3:
            raise ValueError(f"CellNetwork needs images: input_shape (C, H, W), got {self.input_shape}; "
                             "for flat inputs use MLPLearner")
        if cells_per_stage < 1 or filters < 1:
            raise ValueError(f"cells_per_stage (N) and filters (F) must be >= 1, got N={cells_per_stage}, "
                             f"F={filters}; the paper searches with N=3, F=32")
        self.genotype = genotype if isinstance(genotype, Genotype) else Genotype.from_dict(genotype)
        self.cells_per_stage, self.filters = cells_per_stage, filters
        self.stem = WNConv2d(self.input_shape[0], filters, 3, bias=False, weight_norm=weight_norm)
        self.stem_bn = LearnerBatchNorm(filters)
        self.cells = nn.ModuleList()
        widths = (filters, filters)  # channels of the two most recent outputs (k-2, k-1)
        reduced_last = False
        for stage in range(3):
            kinds = ([True] if stage > 0 else []) + [False] * cells_per_stage  # reduction cell opens stages 2, 3
            for reduction in kinds:
                channels = filters * 2 ** stage
                nodes = self.genotype.reduce if reduction else self.genotype.normal
                self.cells.append(Cell(nodes, widths, channels, reduction=reduction, reduce_input0=reduced_last,
                                       weight_norm=weight_norm))
                widths, reduced_last = (widths[1], channels), reduction
        self.classifier = WNLinear(widths[1], num_classes, weight_norm=weight_norm)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) -> (B, classes)
        """Logits of a batch of images."""
        s0 = s1 = self.stem_bn(self.stem(x))
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(F.leaky_relu(s1, LEAKY_SLOPE).mean(dim=(2, 3)))  # global average pooling

    def extra_repr(self) -> str:
        return f"N={self.cells_per_stage}, F={self.filters}"
