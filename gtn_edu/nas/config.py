"""`NASConfig`: the cell search space's settings, with the paper's values as defaults.

The paper (section 3.3) uses NAO's search space, blueprint and hyperparameters (Luo et
al., 2018) and names the blueprint's N (normal cells per stage) and F (first-stage
filters) without printing their values; NAO's are N=3, F=32 for evaluating candidates
during the search and N=6, F=36 for training the final architecture (the paper also
widens the final network to F=128, Table 1). Each cell has B=5 nodes, each drawing two
inputs and two of appendix C's 11 operations.

Like `gtn_edu.config.GTNConfig`, the config validates itself when made, so
`dataclasses.replace` checks variants too, and `asdict(config)` is JSON-able.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .ops import PAPER_OPERATIONS
from .space import CellSpace, check_cell_space

__all__ = ["NASConfig", "FINAL_CHANGES"]

FINAL_CHANGES = {"cells_per_stage": 6, "filters": 36}
"""NAO's final-training blueprint (N=6, F=36), applied by `NASConfig.final()`."""


@dataclass
class NASConfig:
    """The cell search space: blueprint size, nodes per cell, operations. Defaults: the search setting.

    Attributes:
        cells_per_stage: N, normal cells in each of the 3 stages (search: 3; final: 6).
        filters: F, filters of the first stage, doubled by each reduction cell (search: 32; final: 36).
        num_nodes: B, nodes per cell (5).
        ops: names of the operations nodes draw from (appendix C's 11 by default; register
            more with `gtn_edu.nas.register_operation`).
        weight_norm: weight-normalise the networks' convs and classifier.
    """

    cells_per_stage: int = 3
    filters: int = 32
    num_nodes: int = 5
    ops: tuple[str, ...] = PAPER_OPERATIONS
    weight_norm: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.ops, list):  # from asdict / JSON
            self.ops = tuple(self.ops)
        check_cell_space(self.cells_per_stage, self.filters, self.num_nodes, self.ops)
        if not isinstance(self.weight_norm, bool):
            raise ValueError(f"weight_norm must be True or False, got {self.weight_norm!r}")

    @classmethod
    def final(cls, **changes) -> NASConfig:
        """The final-training setting, N=6, F=36 (keyword arguments override further fields)."""
        return replace(cls(), **{**FINAL_CHANGES, **changes})

    def space(self, input_shape: tuple[int, int, int] = (3, 32, 32), num_classes: int = 10) -> CellSpace:
        """The `CellSpace` of this config for inputs of `input_shape` (CIFAR-10's by default)."""
        return CellSpace(tuple(input_shape), num_classes, self.cells_per_stage, self.filters, self.num_nodes,
                         self.ops, self.weight_norm)
