r"""The recomputing meta-gradient (appendix D): store T states, recompute each step backwards.

`UnrolledSGD.unroll(..., mode="recompute")` runs the inner loop through this autograd
Function. Its forward pass trains without a graph and keeps only the learner state
$s_t$ before each step; its backward pass walks $t = T-1, \dots, 0$, rebuilds step $t$
from $s_t$ with a graph, and back-propagates the adjoint $\bar s_{t+1}$ through that one
step into $\bar s_t$ and into the inputs (teacher tensors, $\alpha$, $\beta$). Memory
grows with T x parameters instead of T x activations; the price is a second forward pass.
The technique is known as gradient checkpointing; this library calls the mode
"recompute" and keeps "checkpoint" for a saved training run. `docs/concepts/recompute.md`
walks through it.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["RecomputedUnroll"]


class RecomputedUnroll(torch.autograd.Function):
    """T inner steps storing only the state after each step; reverse sweep recomputes.

    Inputs after the non-tensor arguments: the optimiser's meta-learned tensors (named by
    `hyper_names`: $a$, $b$ and any a subclass adds), batch tensors, initial state.
    Outputs: the flattened states at the kept steps.

    Every tensor a step reads that requires grad must be one of these inputs: the reverse
    sweep differentiates each recomputed step with respect to its inputs only. A step that
    reads another one (captured from outside, say a learner's loss reading a free tensor)
    raises RuntimeError naming it, rather than leaving it a silent zero gradient.

    The stored states go through `save_for_backward`, never onto `ctx` as attributes:
    the states at kept steps are also this Function's outputs, and an output held by its
    own `ctx` is a reference cycle through the C++ graph that Python's garbage collector
    cannot see (it leaked every outer iteration with intermediate scored steps). Saved
    tensors are freed by autograd after the backward pass, or with the graph when no
    backward pass happens.
    """

    @staticmethod
    def forward(ctx, sgd, learner, batches, state0, keep, callback, hyper_names, *tensors):
        n_hyper, n_batch = len(hyper_names), len(batches.tensors)
        hyper, batch_t = tensors[:n_hyper], tensors[n_hyper:n_hyper + n_batch]
        state = state0.with_tensors(tensors[n_hyper + n_batch:])
        stored, outputs = [], []
        for t in range(batches.steps):
            stored.extend(state.tensors())  # state t, the input of step t
            state, loss = sgd.step(learner, batches, t, state, dict(zip(hyper_names, hyper)), batch_t,
                                   differentiable=False)
            if callback is not None:
                callback(t, state, loss)
            if t + 1 in keep:
                outputs.extend(state.tensors())
        ctx.sgd, ctx.learner, ctx.batches, ctx.keep, ctx.template = sgd, learner, batches, keep, state0
        ctx.hyper_names, ctx.n_hyper, ctx.n_batch = hyper_names, n_hyper, n_batch
        ctx.save_for_backward(*tensors[:n_hyper + n_batch], *stored)
        return tuple(outputs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_outputs):
        saved = ctx.saved_tensors
        n_in, keep, template = ctx.n_hyper + ctx.n_batch, ctx.keep, ctx.template
        inputs, stored = saved[:n_in], saved[n_in:]
        n_state = len(template.tensors())
        per_keep = {k: grad_outputs[i * n_state:(i + 1) * n_state] for i, k in enumerate(keep)}
        # Step t maps s_{t+1} = f_t(s_t; h, phi) (h: the optimiser's tensors, phi: the batch tensors).
        # The adjoints run backwards: bar_s_T = dL/ds_T, and for t = T-1, ..., 0
        #   bar_h   += (df_t/dh)^T   bar_s_{t+1}        bar_phi += (df_t/dphi)^T bar_s_{t+1}
        #   bar_s_t  = (df_t/ds_t)^T bar_s_{t+1}  (+ dL/ds_t when state t is also an output)
        adj = [torch.zeros_like(x) for x in per_keep[keep[-1]]]  # bar_s_{t+1}
        adj_inputs = [None] * len(inputs)  # bar_h, bar_phi
        for t in reversed(range(ctx.batches.steps)):
            if t + 1 in per_keep:  # the meta-loss reads s_{t+1} directly too: + dL/ds_{t+1}
                adj = [a + g for a, g in zip(adj, per_keep[t + 1])]
            with torch.enable_grad():  # recompute f_t from the stored s_t, with a graph this time
                leaf_in = [x.detach().requires_grad_(x.requires_grad) for x in inputs]
                leaf_state = [s.detach().requires_grad_(s.is_floating_point())
                              for s in stored[t * n_state:(t + 1) * n_state]]
                state_t = template.with_tensors(leaf_state)
                new_state, _ = ctx.sgd.step(ctx.learner, ctx.batches, t, state_t,
                                            dict(zip(ctx.hyper_names, leaf_in[:ctx.n_hyper])),
                                            leaf_in[ctx.n_hyper:], differentiable=True)
                outs = new_state.tensors()
                wrt = [x for x in leaf_in + leaf_state if x.requires_grad]
                if t == ctx.batches.steps - 1:  # once per unroll: every step reads the same tensors
                    _refuse_captured(outs, wrt)
                pairs = [(o, a) for o, a in zip(outs, adj) if o.requires_grad]
                # one vector-Jacobian product: (df_t/d(h, phi, s_t))^T bar_s_{t+1}
                grads = torch.autograd.grad([o for o, _ in pairs], wrt, [a for _, a in pairs],
                                            allow_unused=True)
            it = iter(grads)
            g_in = [next(it) if x.requires_grad else None for x in leaf_in]
            g_state = [next(it) if s.requires_grad else None for s in leaf_state]
            adj_inputs = [_add(a, g) for a, g in zip(adj_inputs, g_in)]  # bar_h, bar_phi += ...
            adj = [g if g is not None else torch.zeros_like(s) for g, s in zip(g_state, leaf_state)]  # bar_s_t
        no_grad = (None,) * 7  # sgd, learner, batches, state0, keep, callback, hyper_names: not tensors
        return no_grad + tuple(adj_inputs) + tuple(adj)  # bar_h, bar_phi, bar_s_0


def _refuse_captured(outputs, wrt) -> None:
    """RuntimeError if `outputs` depend on a leaf that requires grad and is not in `wrt`.

    The leaves of a recomputed step's graph are its inputs; any other leaf (a tensor a
    method read from outside) would get no gradient from this backward pass.
    """
    known, seen, stack = {id(x) for x in wrt}, set(), [o.grad_fn for o in outputs if o.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        leaf = getattr(node, "variable", None)  # AccumulateGrad: a leaf tensor that requires grad
        if leaf is not None and id(leaf) not in known:
            raise RuntimeError(
                f"the recomputed inner step reads a tensor that requires grad (shape {tuple(leaf.shape)}) but is no "
                "input of the step, so mode='recompute' cannot give it a meta-gradient. Make it an nn.Parameter of "
                "the UnrolledSGD (its update), of the teacher (its forward) or of the curriculum, or train with "
                "mode='full'")
        stack.extend(fn for fn, _ in node.next_functions)


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b
