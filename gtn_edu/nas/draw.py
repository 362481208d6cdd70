"""NAS figures with matplotlib: a cell as a graph, Figure 3c's scatters, random-search outcomes.

* `plot_cell(genotype, cell)`: one cell of a genotype as a graph;
* `plot_proxies(rows, truth)`: each evaluation's score against the ground truth (Figure 3c);
* `plot_searches(searches)`: the ground truth of what random searches with each evaluation pick.

`plot_cell`:
Inputs c0, c1 (the two previous cells' outputs) stand on the left, the nodes n2, n3, ...
in order of computation, and `out` (the concatenation of the unread states) on the right.
Every node has two incoming edges, each labelled with its operation; dashed edges feed the
output. Edges that skip columns bow outwards, around the nodes between, and a node
reading the same input twice gets two bowed edges, so both labels show.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .genotype import Genotype

if TYPE_CHECKING:  # matplotlib is imported only when a figure is drawn
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_cell", "plot_proxies", "plot_searches"]


def _label(i: int) -> str:
    return f"c{i}" if i < 2 else f"n{i}"


def plot_cell(genotype: Genotype | dict, cell: str = "normal", ax: Axes | None = None, *,
              title: str | None = None) -> Axes:
    """Draw `genotype`'s normal or reduction cell; returns the matplotlib Axes.

    Args:
        genotype: a `Genotype` or its dict (`CellSpace.sample_spec()`).
        cell: "normal" or "reduce".
        ax: Axes to draw into (a new figure if None).
        title: the Axes' title (default: the cell's name).
    """
    import matplotlib.pyplot as plt

    g = genotype if isinstance(genotype, Genotype) else Genotype.from_dict(genotype)
    if cell not in ("normal", "reduce"):
        raise ValueError(f"cell must be 'normal' or 'reduce', got {cell!r}")
    nodes = getattr(g, cell)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.8 * (len(nodes) + 2), 3.2))
    # positions: inputs on the left, nodes left to right in a zigzag, the output on the right
    dx = 1.8  # column spacing, wide enough for the operation names
    pos = {0: (0.0, 1.0), 1: (0.0, -1.0)}
    for i in range(2, len(nodes) + 2):
        pos[i] = (dx * (i - 1), 0.6 if i % 2 else -0.6)
    out = len(nodes) + 2
    pos[out] = (dx * (len(nodes) + 1), 0.0)

    def edge(a: int, b: int, text: str, rad: float, style: str = "-") -> None:
        (x1, y1), (x2, y2) = pos[a], pos[b]
        ax.annotate("", xy=(x2, y2), xytext=(x1, y1),
                    arrowprops=dict(arrowstyle="-|>", linestyle=style, color="0.35", shrinkA=13, shrinkB=13,
                                    connectionstyle=f"arc3,rad={rad}"))
        if text:  # the midpoint of matplotlib's arc3 curve: the chord's middle + rad/2 * (dy, -dx)
            mx, my = (x1 + x2) / 2 + rad / 2 * (y2 - y1), (y1 + y2) / 2 - rad / 2 * (x2 - x1)
            ax.text(mx, my, text, fontsize=7, ha="center", va="center",
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.85))

    def bow(a: int, i: int) -> float:
        """Edges that skip columns bow away from the middle line, around the nodes they pass."""
        span = (pos[i][0] - pos[a][0]) / dx
        side = 1.0 if pos[a][1] + pos[i][1] >= 0 else -1.0
        return -side * 0.22 * (span - 1) / span ** 0.5

    for i, (a, op_a, b, op_b) in enumerate(nodes, start=2):
        same = a == b
        edge(a, i, op_a, bow(a, i) + (0.25 if same else 0.0))
        edge(b, i, op_b, bow(b, i) - (0.25 if same else 0.0))
    for i in Genotype.unused(nodes):
        edge(i, out, "", 0.0, "--")
    colours = {"input": "#cfe2f3", "node": "#fff2cc", "out": "#d9ead3"}
    for i, (x, y) in pos.items():
        kind, text = ("input", _label(i)) if i < 2 else ("out", "out") if i == out else ("node", _label(i))
        ax.text(x, y, text, ha="center", va="center", fontsize=10, zorder=3,
                bbox=dict(boxstyle="circle,pad=0.35", fc=colours[kind], ec="0.3"))
    ax.set_xlim(-0.6, dx * (len(nodes) + 1) + 0.6)
    ax.set_ylim(-2.0, 2.0)
    ax.set_aspect("equal")  # arc3 bends in screen space: equal scales keep the labels on their curves
    ax.set_axis_off()
    ax.set_title(title if title is not None else f"{cell} cell")
    return ax


def plot_proxies(rows: Sequence[dict], truth: Sequence[float], *,
                 log_scale: tuple[str, ...] = ("SynFlow", "synflow"), columns: int = 4) -> Figure:
    """Figure 3c for every evaluation: its score against the ground truth, its top half in orange.

    Args:
        rows: `proxy_table` rows (name, scores, the two rank correlations).
        truth: the ground truth of the same architectures (accuracies in [0, 1]).
        log_scale: names of evaluations whose scores span orders of magnitude (x axis in log).
        columns: panels per row of the figure (more evaluations wrap onto further rows).

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    ncols = max(1, min(columns, len(rows)))
    nrows = -(-len(rows) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 3.4 * nrows), sharey=True, squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.remove()  # the last row's empty panels
    y = [100 * t for t in truth]
    for ax, row in zip(axes.flat, rows):
        x = row["scores"]
        cut = sorted(x, reverse=True)[(len(x) + 1) // 2 - 1]  # the top half: ceil(n/2) highest scores
        for top, colour, label in ((False, "tab:blue", "bottom half"), (True, "tab:orange", "top half")):
            pts = [(a, b) for a, b in zip(x, y) if (a >= cut) == top]
            ax.scatter([a for a, _ in pts], [b for _, b in pts], s=14, color=colour, label=label)
        ax.set(title=f"{textwrap.fill(row['name'], 30)}\nall {row['all'].rho:.2f}, top half {row['top_half'].rho:.2f}",
               xlabel="the evaluation's score")
        if row["name"] in log_scale and min(x) > 0:
            ax.set_xscale("log")
    for ax in axes[:, 0]:
        ax.set_ylabel("ground-truth accuracy (%)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_searches(searches: dict, *, n: int | None = None) -> Figure:
    """Box plots of the ground truth each evaluation's random searches picked (`simulate_searches` output).

    Dashed: what a perfect evaluation picks on average; dotted: a random pick.

    Returns:
        the matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    names = list(searches)
    first = searches[names[0]]
    fig, ax = plt.subplots(figsize=(6.5, 0.5 * len(names) + 1.6))
    ax.boxplot([[100 * v for v in searches[k]["picked_truth"]] for k in names], orientation="horizontal",
               showfliers=False)
    ax.set_yticks(range(1, len(names) + 1), names)
    mean = lambda vals: 100 * sum(vals) / len(vals)  # noqa: E731
    ax.axvline(mean(first["best_possible"]), color="tab:green", ls="--", label="perfect evaluation (mean)")
    if "sample_mean" in first:
        ax.axvline(mean(first["sample_mean"]), color="0.5", ls=":", label="random pick (mean)")
    ax.set(xlabel="ground-truth accuracy of the picked architecture (%)",
           title="random search" + (f", {n} candidates a search" if n else ""))
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig
