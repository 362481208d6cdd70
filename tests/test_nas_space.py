"""The NAS cell search space (gtn_edu.nas): operations, genotypes, cell networks, meta-gradients."""

import json
import math
from dataclasses import replace

import pytest
import torch

from gtn_edu import Learner, TensorBatches, UnrolledSGD
from gtn_edu.nas import (
    FINAL_CHANGES,
    OPERATIONS,
    PAPER_OPERATIONS,
    CellNetwork,
    CellSpace,
    ConvBN,
    Genotype,
    NASConfig,
    register_operation,
)

# Every operation of appendix C appears once; identity on c0/c1 of the reduction cell is stride 2.
ALL_OPS = Genotype(
    normal=[(0, "conv_3x3", 1, "identity"), (2, "conv_1x3_3x1", 1, "max_pool_2x2"),
            (3, "avg_pool_2x2", 2, "conv_1x1"), (1, "avg_pool_5x5", 4, "max_pool_3x3")],
    reduce=[(0, "identity", 1, "conv_1x7_7x1"), (2, "max_pool_5x5", 1, "avg_pool_3x3")])


def _rng(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- operations ----
def test_registry_holds_appendix_c_operations():
    assert len(PAPER_OPERATIONS) == 11 and set(PAPER_OPERATIONS) <= set(OPERATIONS)
    assert {op for node in ALL_OPS.normal + ALL_OPS.reduce for op in node[1::2]} == set(PAPER_OPERATIONS)


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", sorted(OPERATIONS))
def test_operation_shape_and_float64_gradient(name, stride, size):
    torch.manual_seed(0)
    op = OPERATIONS[name](4, stride, True).double()
    x = torch.randn(3, 4, size, size + 1, dtype=torch.float64, requires_grad=True)
    out = op(x)
    assert out.shape == (3, 4, math.ceil(size / stride), math.ceil((size + 1) / stride))
    assert torch.isfinite(out).all()
    params = list(op.parameters())
    assert torch.autograd.gradcheck(lambda x, *ps: op(x), (x, *params), eps=1e-6, atol=1e-5, fast_mode=True)


def test_even_pools_keep_shape_and_count_only_real_pixels():
    x = torch.arange(16.0, dtype=torch.float64).view(1, 1, 4, 4)
    avg, mx = OPERATIONS["avg_pool_2x2"](1, 1, False), OPERATIONS["max_pool_2x2"](1, 1, False)
    assert avg(torch.ones(2, 1, 5, 5)).eq(1).all()  # one pixel of padding after, not counted
    a, m = avg(x)[0, 0], mx(x)[0, 0]
    assert a.shape == m.shape == (4, 4)
    assert a[0, 0] == (0 + 1 + 4 + 5) / 4 and a[3, 3] == 15 and a[3, 0] == (12 + 13) / 2
    assert m[0, 0] == 5 and m[3, 3] == 15 and m[0, 3] == 7  # -inf padding never wins
    assert avg(x[..., :3, :3]).shape == (1, 1, 3, 3)


def test_register_operation_adds_a_buildable_op():
    @register_operation("test_conv_5x5")
    def conv_5x5(channels, stride, weight_norm):
        return ConvBN(channels, 5, stride, weight_norm)

    try:
        assert "test_conv_5x5" not in PAPER_OPERATIONS  # the default sampling stays the paper's
        g = Genotype.sample(_rng(0), num_nodes=2, ops=("test_conv_5x5", "identity"))
        net = CellNetwork(g, (3, 8, 8), 10, 1, 4)
        assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
        with pytest.raises(ValueError, match="already registered"):
            register_operation("test_conv_5x5")(conv_5x5)
    finally:
        del OPERATIONS["test_conv_5x5"]
    with pytest.raises(ValueError, match="names must be"):
        register_operation("conv 5x5")


# ---- genotypes ----
def test_genotype_json_round_trip_and_str():
    g = Genotype.sample(_rng(3))
    back = Genotype.from_dict(json.loads(json.dumps(g.to_dict())))
    assert back == g and hash(back) == hash(g)
    assert len(g.normal) == len(g.reduce) == 5
    text = str(ALL_OPS)
    assert text.startswith("normal: n2 = conv_3x3(c0) + identity(c1); n3 = conv_1x3_3x1(n2) + max_pool_2x2(c1)")
    assert "out = concat(n5)" in text  # every node but the last is read
    assert "reduce: n2 = identity(c0) + conv_1x7_7x1(c1); n3 = max_pool_5x5(n2) + avg_pool_3x3(c1); " \
           "out = concat(n3)" in text


def test_seeded_sampling_and_initialisation():
    space = CellSpace((3, 8, 8), 10, cells_per_stage=1, filters=4)
    assert space.sample_spec(_rng(5)) == space.sample_spec(_rng(5))
    specs = [json.dumps(space.sample_spec(_rng(s))) for s in range(6)]
    assert len(set(specs)) == 6
    a, b, c = space.sample(_rng(7)), space.sample(_rng(7)), space.sample(_rng(8))
    assert a.genotype == b.genotype != c.genotype
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    spec = space.sample_spec(_rng(1))
    w1, w2 = space.build(spec, _rng(1)).stem.v, space.build(spec, _rng(2)).stem.v
    assert not torch.equal(w1, w2)
    state = torch.get_rng_state()
    space.build(spec, _rng(1))
    assert torch.equal(state, torch.get_rng_state())  # the global generator is left alone


@pytest.mark.parametrize("cell, nodes, match", [
    ("normal", [(0, "conv_3x3", 1, "identity"), (3, "conv_1x1", 0, "identity")], r"normal node n3 .*input_a=3"),
    ("reduce", [(0, "conv_3x3", -1, "identity")], r"reduce node n2 .*input_b=-1"),
    ("normal", [(0, "conv_3x3", 1, "sep_conv_3x3")], r"normal node n2 .*op_b='sep_conv_3x3'.*register_operation"),
    ("normal", [(0, "conv_3x3", 1)], r"normal node n2 .*must be \(input_a, op_a, input_b, op_b\)"),
    ("normal", [(True, "conv_3x3", 1, "identity")], r"normal node n2 .*input_a=True"),
    ("reduce", [], r"reduce has no nodes"),
])
def test_invalid_genotype_names_the_node(cell, nodes, match):
    good = [(0, "identity", 1, "identity")]
    with pytest.raises(ValueError, match=match):
        Genotype(**{"normal": good, "reduce": good, cell: nodes})


def test_from_dict_needs_both_cells():
    with pytest.raises(ValueError, match="keys"):
        Genotype.from_dict({"normal": [[0, "identity", 1, "identity"]]})


# ---- networks, spaces, config ----
@pytest.mark.parametrize("shape", [(3, 16, 16), (1, 15, 9)])
def test_network_shapes_through_reduction_cells(shape):
    torch.manual_seed(0)
    net = CellNetwork(ALL_OPS, shape, 10, cells_per_stage=1, filters=8)
    net.check_functional()
    assert len(net.cells) == 5 and [c.reduction for c in net.cells] == [False, True, False, True, False]
    assert net.cells[-1].project.bn.num_features == 32 and net.classifier.in_features == 32
    assert net(torch.randn(4, *shape)).shape == (4, 10)


def test_unread_cell_inputs_join_the_output_so_every_parameter_learns():
    only_c0 = Genotype(normal=[(0, "conv_1x1", 0, "identity"), (2, "conv_3x3", 0, "avg_pool_3x3")],
                       reduce=[(1, "max_pool_2x2", 1, "conv_1x1"), (2, "identity", 2, "conv_1x1")])
    assert "out = concat(c1, n3)" in str(only_c0) and "out = concat(c0, n3)" in str(only_c0)
    net = CellNetwork(only_c0, (3, 8, 8), 10, 1, 4)
    net(torch.randn(4, 3, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_cell_space_and_config():
    config = NASConfig()
    assert (config.cells_per_stage, config.filters, config.num_nodes) == (3, 32, 5)
    assert config.ops == PAPER_OPERATIONS and config.weight_norm
    final = NASConfig.final()
    assert (final.cells_per_stage, final.filters) == (FINAL_CHANGES["cells_per_stage"], FINAL_CHANGES["filters"])
    space = replace(config, cells_per_stage=1, filters=4, num_nodes=3).space((3, 8, 8), 10)
    assert isinstance(space, CellSpace)
    spec = space.sample_spec(_rng(0))
    assert len(spec["normal"]) == 3 and json.loads(json.dumps(spec)) == spec
    learner = space.build(spec, _rng(0))
    assert isinstance(learner, Learner) and learner.genotype == Genotype.from_dict(spec)
    assert learner(torch.randn(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("changes, match", [
    ({"cells_per_stage": 0}, "cells_per_stage"), ({"filters": 0}, "filters"), ({"num_nodes": 1}, "num_nodes"),
    ({"ops": ("conv_3x3", "conv_9x9")}, "conv_9x9"), ({"ops": ()}, "non-empty"),
    ({"ops": ("identity", "identity")}, "twice"), ({"weight_norm": 1}, "weight_norm"),
])
def test_config_validates_itself(changes, match):
    with pytest.raises(ValueError, match=match):
        NASConfig(**changes)


# ---- meta-gradients through a tiny cell network ----
T, BATCH, IMAGE = 3, 4, (3, 8, 8)


def _problem():
    torch.manual_seed(0)
    net = CellNetwork(ALL_OPS, IMAGE, 10, cells_per_stage=1, filters=4).double()
    images = torch.randn(T, BATCH, *IMAGE, dtype=torch.float64, requires_grad=True)
    batches = TensorBatches(T, (images,), lambda t, ts: ts[0][t], torch.randint(10, (T, BATCH)))
    x_real, y_real = torch.randn(6, *IMAGE, dtype=torch.float64), torch.randint(10, (6,))
    sgd = UnrolledSGD(0.02, 0.5).double()

    def meta_loss(mode: str) -> torch.Tensor:
        sgd.mode = mode
        return net.meta_loss(sgd.unroll(net, batches), x_real, y_real)

    return meta_loss, images, sgd


def _central_difference(meta_loss, tensor, direction, eps):
    with torch.no_grad():
        tensor.add_(eps * direction)
        plus = meta_loss("full").item()
        tensor.sub_(2 * eps * direction)
        minus = meta_loss("full").item()
        tensor.add_(eps * direction)
    return (plus - minus) / (2 * eps)


def test_meta_gradient_matches_finite_differences():
    meta_loss, images, sgd = _problem()
    hyper = [sgd.raw_lr, sgd.raw_momentum]
    grads = torch.autograd.grad(meta_loss("full"), [images, *hyper])
    direction = torch.randn(images.shape, generator=_rng(1), dtype=torch.float64)
    for tensor, d, grad in zip([images, *hyper], [direction, *map(torch.ones_like, hyper)], grads):
        analytic = (grad * d).sum().item()
        # Max-pool argmax switches and LeakyReLU kinks make the inner gradient (so theta_T)
        # jump; a network this size has many, so the step is small and a wider one must agree.
        numeric = _central_difference(meta_loss, tensor, d, 3e-7)
        wide = _central_difference(meta_loss, tensor, d, 1e-6)
        assert abs(wide - numeric) <= 1e-5 * abs(numeric), "the difference straddles a kink: change the seed"
        assert abs(numeric) > 1e-6
        assert abs(analytic - numeric) <= 1e-5 * abs(numeric), f"analytic {analytic:.10g} vs FD {numeric:.10g}"


def test_recompute_meta_gradient_equals_full():
    meta_loss, images, sgd = _problem()
    wrt = [images, sgd.raw_lr, sgd.raw_momentum]
    full = torch.autograd.grad(meta_loss("full"), wrt)
    ckpt = torch.autograd.grad(meta_loss("recompute"), wrt)
    for a, b in zip(full, ckpt):
        assert a.abs().sum() > 0
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
