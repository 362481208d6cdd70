"""`CellSpace`: the NAS cell search space as an `ArchSpace` (section 3.3, appendix C).

`sample_spec(rng)` draws a genotype uniformly (random search, the paper's search method)
as a JSON-able dict; `build(spec, rng)` builds its `CellNetwork` with a fresh
initialisation drawn from `rng`. So a GTN can be meta-trained on learners of this space
(`MetaTrainer` calls `sample`), and a search can store and rebuild every candidate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..arch_space import ArchSpace, seeded_build
from .genotype import Genotype
from .network import CellNetwork
from .ops import OPERATIONS, PAPER_OPERATIONS

__all__ = ["CellSpace", "check_cell_space"]


def check_cell_space(cells_per_stage: int, filters: int, num_nodes: int, ops: tuple[str, ...]) -> None:
    """Raise ValueError, naming the fix, when a cell space's settings cannot build a network."""
    for name, value, low in (("cells_per_stage (N)", cells_per_stage, 1), ("filters (F)", filters, 1),
                             ("num_nodes (B)", num_nodes, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}; the paper searches with N=3, F=32, "
                             "B=5 and trains the final network with N=6, F=36")
    if isinstance(ops, str) or not ops:
        raise ValueError(f"ops must be a non-empty tuple of operation names, got {ops!r}; "
                         f"the paper's are {PAPER_OPERATIONS}")
    unknown = [op for op in ops if op not in OPERATIONS]
    if unknown:
        raise ValueError(f"ops {unknown} are not registered; use names from {sorted(OPERATIONS)} or add them "
                         "with @gtn_edu.nas.register_operation(name) before making the space")
    if len(set(ops)) != len(ops):
        raise ValueError(f"ops lists an operation twice ({list(ops)}), which would draw it more often; "
                         "list each once")


@dataclass
class CellSpace(ArchSpace):
    """Cell networks (NAO's blueprint) whose normal and reduction cells are drawn uniformly.

    Args:
        input_shape: (C, H, W).
        num_classes: outputs.
        cells_per_stage: N, normal cells per stage (search: 3; final training: 6).
        filters: F, the first stage's width (search: 32; final training: 36).
        num_nodes: B, nodes per cell (5).
        ops: operation names to draw from (default: appendix C's 11).
        weight_norm: weight normalisation in the networks.

    Examples:
        >>> space = CellSpace((3, 32, 32), 10)
        >>> spec = space.sample_spec(torch.Generator().manual_seed(0))  # a Genotype.to_dict()
        >>> learner = space.build(spec, torch.Generator().manual_seed(1))  # doctest: +SKIP
    """

    input_shape: tuple[int, int, int] = (3, 32, 32)
    num_classes: int = 10
    cells_per_stage: int = 3
    filters: int = 32
    num_nodes: int = 5
    ops: tuple[str, ...] = PAPER_OPERATIONS
    weight_norm: bool = True

    def __post_init__(self) -> None:
        self.input_shape, self.ops = tuple(self.input_shape), tuple(self.ops)
        check_cell_space(self.cells_per_stage, self.filters, self.num_nodes, self.ops)
        if len(self.input_shape) != 3:
            raise ValueError(f"CellSpace needs images: input_shape (C, H, W), got {self.input_shape}")

    def sample_spec(self, rng: torch.Generator | None = None) -> dict:
        """A uniformly drawn genotype as `Genotype.to_dict()`: `{"normal": [[a, op_a, b, op_b], ...], ...}`."""
        return Genotype.sample(rng, self.num_nodes, self.ops).to_dict()

    def build(self, spec: dict | Genotype, rng: torch.Generator | None = None) -> CellNetwork:
        """The `CellNetwork` of `spec` (a genotype or its dict); the same `rng` state gives the same weights."""
        genotype = spec if isinstance(spec, Genotype) else Genotype.from_dict(spec)
        return seeded_build(lambda: CellNetwork(genotype, self.input_shape, self.num_classes, self.cells_per_stage,
                                                self.filters, weight_norm=self.weight_norm), rng)
