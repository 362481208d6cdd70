"""Does torch.compile cut the operations of one differentiable inner step? A probe for issue 13.

    python benchmarks/compile_probe.py                         # 3 quick-size learners, float32, CPU
    python benchmarks/compile_probe.py --dtype float64         # the same, checked in float64
    python benchmarks/compile_probe.py --archs 2 --smoke       # tiny learners (compiling still takes minutes)
    python benchmarks/compile_probe.py --smoke --dynamic-widths [--space mlp]   # one compilation for all widths?
    python benchmarks/compile_probe.py --smoke --dynamic-widths --conv unfold   # ... with im2col convolutions
    python benchmarks/compile_probe.py --archs 1 --backend aot_eager   # AOTAutograd's graph run eagerly, no inductor

One inner step of the meta-gradient path, as the recomputing reverse sweep runs it: the
learner's gradient on a batch (eq. 1's $\\nabla_\\theta \\ell$, written with `torch.func.grad`
because dynamo cannot trace `torch.autograd.grad(create_graph=True)`), the momentum update
of eq. (1), then the backward pass through all of it (a double backward) with respect to
weights, momentum, the batch, lr and momentum coefficient. It runs eagerly and through
`torch.compile(dynamic=True)` for several freshly sampled learners, and prints per learner:
aten operator calls (all, and leaves: calls that call no other aten operator), the seconds
of the first compiled call (compilation) and of later calls (median), and the largest
relative difference of the compiled gradients from the eager ones.

`--dynamic-widths` tries to make one compilation serve every width: it compiles with
parameters' shapes dynamic (`force_parameter_static_shapes=False`), without duck sizing
(equal widths would otherwise share one symbol and recompile when they differ), with
inductor's convolution lowering replaced by the plain aten call (the lowering turns the
weight's sizes into constants), and with the compile caches off. It prints how many
graphs were compiled after each learner. (It still compiles one graph per conv learner at
torch 2.14.1: docs/benchmarks/cost.md says where the widths become constants.)

`--conv unfold` runs the conv learners' convolutions without `aten.convolution`, as im2col:
`F.unfold` of the input and a matrix product with the weight (`UnfoldConv2d`), checked
against `F.conv2d` in float64 (outputs and the step's gradients) before anything is timed.

This is a probe. The engine's opt-in compiled step (`gtn_edu.fast.CompiledSGD`,
`gtn_edu/fast/compiled.py`) uses the `--dynamic-widths` settings that apply to it (parameter
shapes dynamic, no duck sizing); docs/benchmarks/cost.md, "torch.compile", has what the probe showed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import grad
from torch.profiler import ProfilerActivity, profile

from gtn_edu.arch_space import ArchSpace
from gtn_edu.nn import WNConv2d

QUICK_SPACE = dict(channel_ranges=((8, 32), (16, 64)), hidden_range=(32, 64))  # arch_scale 0.25 of appendix A.1
SMOKE_SPACE = dict(channel_ranges=((2, 4), (4, 6)), hidden_range=(8, 12))
MLP_SPACE = dict(width_range=(32, 128), max_layers=1)  # one hidden layer of a random width

_SLOT: dict = {}  # the current learner: one compiled function serves every architecture


def inner_step(params, momentum, x, y, lr, beta):
    """theta' = theta - lr * (beta * m + grad), m' = beta * m + grad, for the learner in `_SLOT`."""
    learner, buffers = _SLOT["learner"], _SLOT["buffers"]
    g, _ = grad(lambda p: learner.inner_batch_loss(p, buffers, x, y), has_aux=True)(params)
    new_m = {k: beta * momentum[k] + g[k] for k in params}
    return {k: params[k] - lr * new_m[k] for k in params}, new_m


def step_and_backward(fn, state, x, y, dtype):
    """One step through `fn` and the backward pass of all its outputs (ones as the adjoint)."""
    params = {k: v.to(dtype).requires_grad_() for k, v in state.params.items()}
    mom = {k: (v.to(dtype) + 0.01).requires_grad_() for k, v in state.momentum_buffer.items()}
    xx = x.to(dtype).requires_grad_()
    lr = torch.tensor(0.1, dtype=dtype, requires_grad=True)
    beta = torch.tensor(0.5, dtype=dtype, requires_grad=True)
    new_p, new_m = fn(params, mom, xx, y, lr, beta)
    outs = [*new_p.values(), *new_m.values()]
    return torch.autograd.grad(outs, [*params.values(), *mom.values(), xx, lr, beta],
                               [torch.ones_like(o) for o in outs])


@contextlib.contextmanager
def dynamic_widths(on: bool):
    """The settings `--dynamic-widths` compiles and runs under (nothing when `on` is False)."""
    if not on:
        yield
        return
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    from torch._inductor.lowering import force_fallback

    from gtn_edu.fast.compiled import dynamic_widths as engine_settings

    # The engine's settings (parameter shapes dynamic, no duck sizing), plus the convolution
    # fallback, and the compile caches off: their keys do not see the fallback, so a graph
    # cached by an earlier run (with the lowering, and its constant widths) would be reused.
    with engine_settings(), inductor_config.patch(fx_graph_cache=False), \
            functorch_config.patch(enable_autograd_cache=False), force_fallback(torch.ops.aten.convolution.default):
        yield


class UnfoldConv2d(WNConv2d):
    """`WNConv2d` computed as im2col: unfold the input, multiply by the weight as a [Cout, Cin*kh*kw] matrix."""

    kernel: tuple[int, int]  # (kh, kw) as plain ints, set by `use_unfold_convs`: constants to dynamo

    def forward(self, x):  # (B, Cin, H, W) -> (B, Cout, H', W')
        w = self.effective_weight()
        cout, cin = w.shape[:2]
        kh, kw = self.kernel
        cols = F.unfold(x, self.kernel, padding=self.padding, stride=self.stride)  # (B, Cin*kh*kw, L)
        out = w.reshape(cout, cin * kh * kw) @ cols  # (B, Cout, L)
        if self.bias is not None:
            out = out + self.bias[:, None]
        ph, pw = (self.padding, self.padding) if isinstance(self.padding, int) else self.padding
        h = (x.shape[2] + 2 * ph - kh) // self.stride + 1
        wd = (x.shape[3] + 2 * pw - kw) // self.stride + 1
        return out.reshape(x.shape[0], cout, h, wd)


def use_unfold_convs(learner) -> None:
    """Make every `WNConv2d` of `learner` an `UnfoldConv2d` (same parameters, same result)."""
    for m in learner.modules():
        if type(m) is WNConv2d:
            m.__class__, m.kernel = UnfoldConv2d, tuple(int(k) for k in m.effective_weight().shape[2:])


def max_rel_diff(new, ref) -> float:
    """The largest, over tensor pairs, of max |new - ref| / max |ref|."""
    return max(((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item() for a, b in zip(new, ref))


def check_unfold(space, dtype=torch.float64) -> None:
    """Print how far im2col convolutions are from `F.conv2d`: one layer, and one learner's whole step."""
    gen = torch.Generator().manual_seed(2)
    worst = {}
    for stride in (1, 2):
        conv = WNConv2d(3, 5, 3, stride=stride).to(dtype)
        x = torch.randn(4, 3, 11, 11, dtype=dtype, generator=gen, requires_grad=True)
        with torch.no_grad():
            conv.bias.normal_(generator=gen)
        results = []
        for swap in (False, True):
            if swap:
                use_unfold_convs(conv)
            out = conv(x)
            results.append([out, *torch.autograd.grad((out ** 2).sum(), [x, *conv.parameters()])])
        worst[f"one layer, stride {stride}"] = max_rel_diff(*results)
    learner = space.sample(torch.Generator().manual_seed(3)).to(dtype)
    state = learner.init_state()
    _SLOT.update(learner=learner, buffers=state.buffers)
    x = torch.randn(10, 1, 28, 28, generator=gen)
    y = torch.arange(10) % 10
    ref = step_and_backward(inner_step, state, x, y, dtype)
    use_unfold_convs(learner)
    new = step_and_backward(inner_step, state, x, y, dtype)
    worst["a sampled learner's inner step, gradients of its double backward"] = max_rel_diff(new, ref)
    print(f"unfold conv vs F.conv2d, largest relative difference ({dtype}): "
          + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()), flush=True)


def count_ops(call) -> tuple[int, int]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    aten = [e for e in prof.events() if e.name.startswith("aten::")]
    leaves = [e for e in aten if not any(c.name.startswith("aten::") for c in e.cpu_children)]
    return len(aten), len(leaves)


def median_seconds(call, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", type=int, default=3, help="freshly sampled learners to run")
    ap.add_argument("--batch", type=int, default=70)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="tiny learners and batch")
    ap.add_argument("--space", choices=["mnist", "mlp"], default="mnist",
                    help="conv learners (appendix A.1, scaled) or one-hidden-layer MLPs")
    ap.add_argument("--dynamic-widths", action="store_true",
                    help="compile once for all widths: dynamic parameter shapes, no duck sizing, aten convolution")
    ap.add_argument("--conv", choices=["aten", "unfold"], default="aten",
                    help="conv learners' convolutions: F.conv2d, or im2col (F.unfold and a matrix product)")
    ap.add_argument("--backend", choices=["inductor", "aot_eager", "eager"], default="inductor",
                    help="torch.compile backend; aot_eager: the decomposed joint graph run eagerly, no codegen")
    ap.add_argument("--out", type=Path, default=None, help="write compile_probe.json here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    batch = 10 if args.smoke else args.batch
    if args.space == "mlp":
        space = ArchSpace.mlp((1, 28, 28), 10, **MLP_SPACE)
    else:
        space = ArchSpace.mnist((1, 28, 28), 10, **(SMOKE_SPACE if args.smoke else QUICK_SPACE))
    if args.conv == "unfold" and args.space != "mlp":
        check_unfold(space)
    rng = torch.Generator().manual_seed(0)
    data_rng = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 1, 28, 28, generator=data_rng)
    y = torch.arange(batch) % 10
    compiled = torch.compile(inner_step, dynamic=True, backend=args.backend)
    rows = []
    for i in range(args.archs):
        spec = space.sample_spec(rng)
        learner = space.build(spec, rng).to(dtype)
        if args.conv == "unfold":
            use_unfold_convs(learner)
        state = learner.init_state()
        _SLOT.update(learner=learner, buffers=state.buffers)

        eager = functools.partial(step_and_backward, inner_step, state, x, y, dtype)

        def comp(state=state):
            with dynamic_widths(args.dynamic_widths):
                return step_and_backward(compiled, state, x, y, dtype)

        t0 = time.perf_counter()
        try:
            g_comp = comp()
        except Exception as e:  # noqa: BLE001 - a compiler failure is a result of the probe
            print(f"learner {i} {spec}: compiling failed after {time.perf_counter() - t0:.0f} s: "
                  f"{type(e).__name__}: {str(e).splitlines()[0][:300]}", flush=True)
            rows.append({"arch": spec, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"})
            break
        first = time.perf_counter() - t0
        g_eager = eager()
        rel = max_rel_diff(g_comp, g_eager)
        row = {"arch": spec,
               "eager_ops": count_ops(eager), "compiled_ops": count_ops(comp),
               "eager_s": median_seconds(eager, args.repeats), "compiled_s": median_seconds(comp, args.repeats),
               "first_compiled_call_s": first, "max_rel_diff": rel,
               "graphs_compiled": torch._dynamo.utils.counters["stats"]["unique_graphs"]}
        rows.append(row)
        print(f"learner {i} {spec}: aten ops (all, leaves) eager {row['eager_ops']} -> compiled {row['compiled_ops']}; "
              f"seconds eager {row['eager_s']:.3f}, compiled {row['compiled_s']:.3f}, first compiled call "
              f"{first:.1f}; max relative difference {rel:.1e} ({args.dtype}); graphs compiled so far "
              f"{row['graphs_compiled']}", flush=True)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compile_probe.json").write_text(json.dumps(
            {"torch": torch.__version__, "dtype": args.dtype, "batch": batch, "threads": args.threads,
             "dynamic_widths": args.dynamic_widths, "space": args.space, "conv": args.conv, "backend": args.backend,
             "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
