r"""A point of the cell search space (section 3.3, appendix C): two cells of B nodes each.

A cell has two inputs, the outputs of the two previous cells, numbered 0 ($c_{k-2}$) and
1 ($c_{k-1}$), and B nodes numbered 2, ..., B+1. Node $i$ picks two inputs $a, b < i$ and
one operation for each, and computes

$$ h_i = \text{op}_a(h_a) + \text{op}_b(h_b). $$

A `Genotype` holds the normal cell's and the reduction cell's nodes as tuples
`(input_a, op_a, input_b, op_b)`. NAO (Luo et al., 2018), whose space the paper uses,
searches exactly these two cells; `CellNetwork` stacks them into a network.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .ops import OPERATIONS, PAPER_OPERATIONS

__all__ = ["Genotype", "Node"]

Node = tuple[int, str, int, str]
"""One node: `(input_a, op_a, input_b, op_b)`; inputs 0, 1 are the previous cells, 2.. earlier nodes."""

_CELLS = ("normal", "reduce")


def _name(i: int) -> str:
    """How `__str__` names input i: c0, c1 for the previous cells, n2, n3, ... for nodes."""
    return f"c{i}" if i < 2 else f"n{i}"


def _check_cell(cell: str, nodes: object) -> tuple[Node, ...]:
    """The nodes of one cell as a tuple of 4-tuples, or a ValueError naming the bad node."""
    if isinstance(nodes, (str, bytes)) or not hasattr(nodes, "__iter__"):
        raise ValueError(f"Genotype.{cell} must be a sequence of nodes (input_a, op_a, input_b, op_b), "
                         f"got {nodes!r}")
    nodes = tuple(nodes)
    if not nodes:
        raise ValueError(f"Genotype.{cell} has no nodes; a cell needs at least one node")
    out = []
    for j, node in enumerate(nodes):
        i = j + 2  # this node's number
        where = f"Genotype.{cell} node {_name(i)} (entry {j})"
        if isinstance(node, (str, bytes)) or not hasattr(node, "__len__") or len(node) != 4:
            raise ValueError(f"{where} must be (input_a, op_a, input_b, op_b), got {node!r}")
        a, op_a, b, op_b = node
        earlier = f"; {', '.join(map(str, range(2, i)))}: earlier nodes" if i > 2 else ""
        for field, inp in (("input_a", a), ("input_b", b)):
            if isinstance(inp, bool) or not isinstance(inp, int) or not 0 <= inp < i:
                raise ValueError(f"{where}: {field}={inp!r} must be an int in 0..{i - 1} (0, 1: the two previous "
                                 f"cells{earlier}); a node may read only what comes before it")
        for field, op in (("op_a", op_a), ("op_b", op_b)):
            if not isinstance(op, str) or op not in OPERATIONS:
                raise ValueError(f"{where}: {field}={op!r} is not a registered operation; use one of "
                                 f"{sorted(OPERATIONS)} or add it with @register_operation({op!r})")
        out.append((a, op_a, b, op_b))
    return tuple(out)


@dataclass(frozen=True)
class Genotype:
    """A normal and a reduction cell, each a tuple of nodes `(input_a, op_a, input_b, op_b)`.

    Lists (from JSON) are accepted and stored as tuples; a bad node raises ValueError
    naming it. Both cells may have different node counts, though `sample` gives them the same.

    Attributes:
        normal: the nodes of the normal (stride 1) cell.
        reduce: the nodes of the reduction cell (its ops on inputs 0 and 1 use stride 2).
    """

    normal: tuple[Node, ...]
    reduce: tuple[Node, ...]

    def __post_init__(self) -> None:
        for cell in _CELLS:
            object.__setattr__(self, cell, _check_cell(cell, getattr(self, cell)))

    @staticmethod
    def unused(nodes: tuple[Node, ...]) -> list[int]:
        """The cell inputs and nodes no node reads: concatenated, they are the cell's output (NAO).

        The last node is always among them. So is a cell input that no node reads: that
        keeps every cell (and every parameter) on a path to the logits.
        """
        used = {inp for a, _, b, _ in nodes for inp in (a, b)}
        return [i for i in range(len(nodes) + 2) if i not in used]

    def to_dict(self) -> dict:
        """`{"normal": [[a, op_a, b, op_b], ...], "reduce": [...]}`: JSON-able, read back by `from_dict`."""
        return {cell: [list(node) for node in getattr(self, cell)] for cell in _CELLS}

    @classmethod
    def from_dict(cls, spec: dict) -> Genotype:
        """The genotype of a `to_dict` dict (e.g. after a `json.dumps`/`json.loads` round trip)."""
        if not isinstance(spec, dict) or set(spec) != set(_CELLS):
            got = sorted(spec) if isinstance(spec, dict) else type(spec).__name__
            raise ValueError(f"a genotype dict needs exactly the keys {list(_CELLS)}, got {got}; "
                             "make one with Genotype.to_dict() or CellSpace.sample_spec(rng)")
        return cls(**{cell: spec[cell] for cell in _CELLS})

    @classmethod
    def sample(cls, rng: torch.Generator | None = None, num_nodes: int = 5,
               ops: tuple[str, ...] | None = None) -> Genotype:
        """A uniformly random genotype: each node's two inputs and two operations drawn independently.

        Args:
            rng: random-number generator (torch's global one if None); the same state gives
                the same genotype.
            num_nodes: B, nodes per cell (the paper: 5).
            ops: operation names to draw from; default `PAPER_OPERATIONS` (appendix C's 11),
                so registering a new operation does not change what a seed draws.
        """
        ops = PAPER_OPERATIONS if ops is None else tuple(ops)
        if num_nodes < 1:
            raise ValueError(f"num_nodes must be >= 1, got {num_nodes}")
        if not ops:
            raise ValueError("ops is empty; pass operation names from OPERATIONS, or None for the paper's 11")

        def draw(n: int) -> int:
            return int(torch.randint(n, (1,), generator=rng))

        cells = {cell: [(draw(i), ops[draw(len(ops))], draw(i), ops[draw(len(ops))])
                        for i in range(2, num_nodes + 2)] for cell in _CELLS}
        return cls(**cells)

    def describe(self, cell: str) -> str:
        """One cell as text: `n2 = conv_3x3(c0) + identity(c1); ...; out = concat(n4, n6)`."""
        nodes = getattr(self, cell)
        parts = [f"{_name(i)} = {op_a}({_name(a)}) + {op_b}({_name(b)})"
                 for i, (a, op_a, b, op_b) in enumerate(nodes, start=2)]
        out = ", ".join(_name(i) for i in self.unused(nodes))
        return "; ".join(parts) + f"; out = concat({out})"

    def __str__(self) -> str:
        """Both cells, one line each (see `describe`)."""
        return "\n".join(f"{cell}: {self.describe(cell)}" for cell in _CELLS)
