"""The stored ground truth, the proxy table built on it, and the NAS figures."""

import json
import math

import matplotlib
import pytest

from gtn_edu.nas import (
    CellSpace,
    GroundTruth,
    markdown_table,
    plot_cell,
    plot_proxies,
    plot_searches,
    proxy_table,
    sample_specs,
    simulate_searches,
)
from gtn_edu.nas.evaluator import Result
from gtn_edu.nas.groundtruth import TABLES

matplotlib.use("Agg")
SPACE = CellSpace((3, 8, 8), 10, cells_per_stage=1, filters=4, num_nodes=2)


def _table(tmp_path, seeds=("0", "1"), missing=None):
    """A table in nas_groundtruth.py's format: 4 architectures, seed 1 in reverse order of seed 0."""
    specs = sample_specs(SPACE, 4, seed=3)
    acc = {"0": [0.1, 0.2, 0.3, 0.4], "1": [0.4, 0.3, 0.2, 0.1]}
    rows = [{"genotype": g, "accuracy": {s: acc[s][i] for s in seeds if (s, i) != missing},
             "seconds": {s: 10.0 + i for s in seeds if (s, i) != missing}} for i, g in enumerate(specs)]
    raw = {"env": {"device": "cpu", "commit": "abc"}, "settings": {"epochs": 2, "dataset": "cifar10"},
           "space": {"input_shape": [3, 8, 8], "num_classes": 10, "cells_per_stage": 1, "filters": 4,
                     "num_nodes": 2, "ops": list(SPACE.ops), "weight_norm": True}, "architectures": rows}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(raw))
    return path, specs


def test_load_reads_the_space_scores_and_costs(tmp_path):
    path, specs = _table(tmp_path)
    truth = GroundTruth.load(path)
    assert truth.space == SPACE and truth.genotypes == specs and len(truth) == 4
    assert truth.mean == pytest.approx([0.25] * 4)
    assert truth.seed_to_seed() == pytest.approx(-1.0)  # the two seeds rank in opposite orders
    assert truth.seconds_per_training() == pytest.approx(11.5)  # median of 10, 11, 12, 13 twice
    assert truth.settings["epochs"] == 2 and truth.env["commit"] == "abc"
    head = truth.head(2)
    assert len(head) == 2 and head.scores == {0: [0.1, 0.2], 1: [0.4, 0.3]}


def test_a_seed_missing_an_architecture_is_left_out(tmp_path):
    path, _ = _table(tmp_path, missing=("1", 2))  # seed 1 stopped before architecture 2
    truth = GroundTruth.load(path)
    assert list(truth.scores) == [0] and truth.mean == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_missing_tables_name_the_script(tmp_path):
    with pytest.raises(FileNotFoundError, match="nas_groundtruth.py"):
        GroundTruth.load(tmp_path / "nope.json")
    with pytest.raises(FileNotFoundError, match="no stored ground truth for 'imagenet'"):
        GroundTruth.stored("imagenet")


def test_the_shipped_cifar10_table():
    truth = GroundTruth.stored("cifar10")
    assert (TABLES / "groundtruth_cifar10.json").exists()
    assert len(truth) >= 40 and len(truth.scores) >= 2, "issue 11: at least 40 architectures, 2 or more seeds"
    assert truth.genotypes == sample_specs(truth.space, len(truth), seed=0)  # the seed-0 search sample
    assert all(0 < a < 1 for s in truth.scores.values() for a in s)
    assert -1 <= truth.seed_to_seed() <= 1 and truth.env.get("commit")


def _results(scores, seconds=1.0):
    return [Result({"i": i}, s, seconds) for i, s in enumerate(scores)]


def test_proxy_table_and_markdown_by_hand():
    truth = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    rows = proxy_table({"same order": _results([1, 2, 3, 4, 5, 6], 0.5),
                        "one swap": _results([2, 1, 3, 4, 5, 6], 2.0)}, truth, n_boot=100)
    assert rows[0]["all"].rho == pytest.approx(1.0) and rows[0]["top_half"].rho == pytest.approx(1.0)
    assert rows[1]["all"].rho == pytest.approx(1 - 6 * 2 / (6 * 35))  # ranks differ by one swap
    assert rows[1]["seconds"] == 2.0 and rows[1]["scores"] == [2, 1, 3, 4, 5, 6]
    text = markdown_table(rows, truth_seconds=100.0, ceiling=0.8)
    assert "| same order | 1.00 [1.00, 1.00] | 1.00 [1.00, 1.00] | 0.50 | 200x |" in text
    assert "| one swap | 0.94 " in text and "| 0.80 (seed vs seed) |" in text
    with pytest.raises(ValueError, match="scored 2 architectures"):
        proxy_table({"short": _results([1, 2])}, truth)


def test_figures_draw_what_they_show():
    spec = sample_specs(CellSpace((3, 32, 32), 10), 1, seed=0)[0]
    ax = plot_cell(spec, "reduce")
    texts = [t.get_text() for t in ax.texts]
    ops = [op for a, op_a, b, op_b in spec["reduce"] for op in (op_a, op_b)]
    assert sorted(t for t in texts if t in set(ops)) == sorted(ops)  # every edge's operation is labelled
    assert {"c0", "c1", "n2", "n6", "out"} <= set(texts)
    with pytest.raises(ValueError, match="'normal' or 'reduce'"):
        plot_cell(spec, "other")
    truth = [0.1, 0.2, 0.3, 0.4, 0.5]
    rows = proxy_table({"a": _results([1, 2, 3, 5, 4]), "b": _results([5, 4, 3, 2, 1])}, truth, n_boot=20)
    fig = plot_proxies(rows, truth)
    assert len(fig.axes) == 2 and fig.axes[0].get_title().startswith("a\nall 0.90")
    fig = plot_searches(simulate_searches({r["name"]: r["scores"] for r in rows}, truth, n=3, seeds=range(5)), n=3)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["a", "b"]
    assert not math.isnan(rows[0]["top_half"].rho)
