"""Layers and learners: weight norm keeps the initial function, BN statistics, functional calls."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gtn_edu import ArchSpace, ConvLearner, LearnerBatchNorm, MLPLearner, UpsampleConv2d, WNConv2d, WNLinear


def test_weight_norm_linear_starts_as_plain_layer():
    torch.manual_seed(0)
    layer = WNLinear(7, 5)
    x = torch.randn(4, 7)
    torch.testing.assert_close(layer(x), F.linear(x, layer.v, layer.bias))
    torch.testing.assert_close(layer.g, layer.v.norm(dim=1))


def test_weight_norm_conv_starts_as_plain_layer():
    torch.manual_seed(0)
    layer = WNConv2d(3, 4, 3)
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.v, layer.bias, padding=1))


@settings(max_examples=25, deadline=None)
@given(cin=st.integers(1, 4), cout=st.integers(1, 4), h=st.integers(1, 6), w=st.integers(1, 6),
       bias=st.booleans(), weight_norm=st.booleans(), seed=st.integers(0, 2**16))
def test_upsample_conv_equals_interpolate_then_conv(cin, cout, h, w, bias, weight_norm, seed):
    """The sub-pixel form is the same function as nearest x2 upsampling -> 3x3 conv, gradients too."""
    torch.manual_seed(seed)
    layer = UpsampleConv2d(cin, cout, bias=bias, weight_norm=weight_norm).double()
    with torch.no_grad():  # move g and bias away from their initial values
        for p in layer.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    x = torch.randn(2, cin, h, w, dtype=torch.float64, requires_grad=True)
    ref = F.conv2d(F.interpolate(x, scale_factor=2), layer.effective_weight(), layer.bias, padding=1)
    out = layer(x)
    assert out.shape == (2, cout, 2 * h, 2 * w)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    cot = torch.randn_like(out)
    wrt = [x, *layer.parameters()]
    for a, b in zip(torch.autograd.grad(out, wrt, cot), torch.autograd.grad(ref, wrt, cot)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_conv_learner_block_is_conv_pool_bn_act():
    """pool="max" blocks compute LeakyReLU(BN(maxpool(conv(x)))), as the docstring says."""
    torch.manual_seed(0)
    learner = ConvLearner((1, 8, 8), 3, channels=(4,), hidden=None)
    x = torch.randn(5, 1, 8, 8)
    h = F.max_pool2d(learner.convs[0](x), 2)
    h = F.leaky_relu(F.batch_norm(h, None, None, learner.conv_bns[0].weight, learner.conv_bns[0].bias,
                                  training=True), 0.1)
    torch.testing.assert_close(learner(x), learner.head(h.flatten(1)))


def test_weight_norm_scale_is_g():
    layer = WNLinear(6, 3)
    with torch.no_grad():
        layer.g.fill_(2.0)
        layer.v.mul_(10)  # the norm of v must not matter
    assert torch.allclose(layer.effective_weight().norm(dim=1), torch.full((3,), 2.0))


def test_learner_batchnorm_matches_torch_with_momentum_one():
    torch.manual_seed(0)
    mine, ref = LearnerBatchNorm(4), torch.nn.BatchNorm2d(4, momentum=1.0)
    x = torch.randn(8, 4, 5, 5) * 3 + 1
    torch.testing.assert_close(mine(x), ref(x))
    mean, var = mine.last_stats
    torch.testing.assert_close(mean, ref.running_mean)
    torch.testing.assert_close(var, ref.running_var)  # unbiased, as torch stores it
    mine.running_mean.copy_(mean)
    mine.running_var.copy_(var)
    mine.eval(), ref.eval()
    x2 = torch.randn(3, 4, 5, 5)
    fast = mine(x2)  # statistics need no gradient: the fused kernel
    torch.testing.assert_close(fast, ref(x2))
    # statistics that need a gradient (a meta-loss) take the written-out path: same values, and
    # the gradient reaches them
    mean_d, var_d = mean.clone().requires_grad_(), var.clone().requires_grad_()
    out = torch.func.functional_call(mine, {"running_mean": mean_d, "running_var": var_d}, (x2,))
    torch.testing.assert_close(out, fast)
    g_mean, g_var = torch.autograd.grad(out.square().sum(), [mean_d, var_d])
    assert g_mean.abs().sum() > 0 and g_var.abs().sum() > 0


def test_trained_state_scores_with_last_batch_statistics():
    torch.manual_seed(0)
    learner = MLPLearner((1, 4, 4), 3, (5,))
    state = learner.init_state()
    x, y = torch.randn(6, 1, 4, 4), torch.randint(3, (6,))
    _, stats = learner.inner_batch_loss(state.params, state.buffers, x, y)
    state.buffers.update(stats)
    h = F.linear(x.flatten(1), learner.layers[0].effective_weight(), learner.layers[0].bias)
    torch.testing.assert_close(stats["bns.0.running_mean"], h.mean(0))
    torch.testing.assert_close(stats["bns.0.running_var"], h.var(0))
    # the module itself, loaded with the state and in eval mode, gives the same outputs
    learner.load_state(state)
    learner.eval()
    torch.testing.assert_close(learner.predict(state, x), learner(x))


def test_functional_call_equals_module_call():
    torch.manual_seed(0)
    learner = ArchSpace.mnist(channel_ranges=((4, 4), (4, 4)), hidden_range=(8, 8)).sample()
    x = torch.randn(5, 1, 28, 28)
    learner.eval()
    torch.testing.assert_close(learner.predict(learner.init_state(), x), learner(x))


def test_learner_rejects_wrong_input_shape_with_fix():
    learner = ConvLearner((1, 28, 28), 10, (4, 4), hidden=8)
    with pytest.raises(ValueError, match=r"input_shape=\(3, 32, 32\)"):
        learner.predict(learner.init_state(), torch.randn(2, 3, 32, 32))


def test_arch_space_rejects_image_too_small():
    with pytest.raises(ValueError, match="too small"):
        ArchSpace.mnist(input_shape=(1, 2, 2))


def test_arch_space_sampling_is_seeded_and_in_range():
    space = ArchSpace.mnist()
    a = space.sample(torch.Generator().manual_seed(3))
    b = space.sample(torch.Generator().manual_seed(3))
    c = space.sample(torch.Generator().manual_seed(4))
    for (ka, pa), (kb, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(pa, pb)
    shapes = lambda m: [tuple(p.shape) for p in m.parameters()]  # noqa: E731
    assert shapes(a) != shapes(c) or not torch.equal(a.head.v, c.head.v)
    for seed in range(20):
        m = space.sample(torch.Generator().manual_seed(seed))
        c1, c2 = m.convs[0].out_channels, m.convs[1].out_channels
        assert 32 <= c1 <= 128 and 64 <= c2 <= 256 and 64 <= m.hidden.out_features <= 256


def test_cifar_space_builds_and_runs():
    learner = ArchSpace.cifar(channel_ranges=((4, 4),) + ((4, 6),) * 4).sample(torch.Generator().manual_seed(0))
    assert [c.stride for c in learner.convs] == [1, 2, 1, 2, 1]
    out = learner.predict(learner.init_state(), torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_old_loss_names_still_work_and_an_old_override_is_honoured():
    """Issue 24: loss_fn -> outer_loss, train_loss -> inner_batch_loss, loss -> meta_loss (old names warn)."""
    learner = MLPLearner((1, 4, 4), 3, (5,), batch_norm=True)
    state, x, y = learner.init_state(), torch.randn(6, 1, 4, 4), torch.tensor([0, 1, 2] * 2)
    with pytest.warns(DeprecationWarning, match="Learner.loss is now Learner.meta_loss"):
        old = learner.loss(state, x, y)
    assert torch.equal(old, learner.meta_loss(state, x, y))
    with pytest.warns(DeprecationWarning, match="loss_fn is now Learner.outer_loss"):
        assert torch.equal(learner.loss_fn(learner(x), y), learner.outer_loss(learner(x), y))
    with pytest.warns(DeprecationWarning, match="train_loss is now Learner.inner_batch_loss"):
        a, _ = learner.train_loss(state.params, state.buffers, x, y)
    assert torch.equal(a, learner.inner_batch_loss(state.params, state.buffers, x, y)[0])

    with pytest.warns(DeprecationWarning, match="Squared.loss_fn overrides a renamed method of Learner: call it"):
        class Squared(MLPLearner):  # written for the old name
            def loss_fn(self, output, target):
                return (output - F.one_hot(target, 3).float()).square().mean()
    sq = Squared((1, 4, 4), 3, (5,))
    s = sq.init_state()
    want = (sq.predict(s, x) - F.one_hot(y, 3).float()).square().mean()
    assert torch.equal(sq.meta_loss(s, x, y), want)  # the old override is the outer loss
    assert torch.equal(sq.inner_loss(sq(x), y), sq.loss_fn(sq(x), y))  # and, by default, the inner one
