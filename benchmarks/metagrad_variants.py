r"""One meta-gradient problem and the ways to compute it, for `metagrad_cost.py`.

Every variant trains the same learner for T steps of SGD with momentum on the same
teacher's batches and, except `plain` and `gtn_nograd`, returns the meta-gradient

$$ \nabla_\phi \, \ell\big(\theta_T(\phi);\, x_\text{real}, y_\text{real}\big), \qquad
   \phi = (\text{teacher weights},\ z_{1..T},\ a,\ b),\ \alpha = e^{a},\ \beta = \sigma(b) $$

| variant          | how                                                                      |
|------------------|--------------------------------------------------------------------------|
| `plain`          | what a user pays to train one learner: teacher under `no_grad`, module   |
|                  | forward, `backward`, `torch.optim.SGD` step; no graph across steps       |
| `gtn_nograd`     | the same training through `UnrolledSGD.unroll(differentiable=False)`     |
| `gtn_full`       | `FusedSGD(mode="full")`: one autograd graph over the T steps             |
| `gtn_recompute` | `FusedSGD(mode="recompute")`: states stored, steps recomputed            |
| `higher`         | `higher.innerloop_ctx` on the `nn.Module` learner, lr and momentum       |
|                  | passed as differentiable `override`s                                     |
| `torchopt`       | `torchopt.sgd` (functional, `inplace=False`) on `Learner.inner_batch_loss`,    |
|                  | lr and momentum as tensors that require grad                             |

A variant is `prepare(problem, T) -> run`, so set-up (copying the learner, building the
optimiser) stays outside the timed `run()`. `run()` returns the gradients in the order of
`problem.targets(T)` (`None` where a variant computes none, e.g. the plain ones).
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gtn_edu import ArchSpace, ConvLearner, Curriculum, LearnerState, Teacher, UnrolledSGD
from gtn_edu.fast import FusedSGD
from gtn_edu.nn import LearnerBatchNorm

__all__ = ["CostProblem", "build_problem", "VARIANTS", "META_VARIANTS", "available", "missing_reason",
           "learner_summary"]

Run = Callable[[], list[Tensor | None]]


@dataclass
class CostProblem:
    """Learner, teacher, inner optimiser and one real batch; curricula are made per T.

    Attributes:
        learner: the learner (its module weights are the initial state of every variant).
        teacher: the generator.
        sgd: the unrolled SGD whose lr and momentum are meta-learned (one shared pair).
        x_real: (N, C, H, W) real batch scored after T steps.
        y_real: (N,) labels.
        batch: inner batch size B.
        seed: seeds each curriculum's codes.
    """

    learner: ConvLearner
    teacher: Teacher
    sgd: UnrolledSGD
    x_real: Tensor
    y_real: Tensor
    batch: int
    seed: int = 0
    _curricula: dict[int, Curriculum] = field(default_factory=dict)

    def curriculum(self, T: int) -> Curriculum:
        """The full curriculum of T learned batches (codes drawn once per T from `seed`)."""
        if T not in self._curricula:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed + T)
                cur = Curriculum.full(T, self.batch, self.teacher.num_classes, self.teacher.latent_dim)
            self._curricula[T] = cur.to(self.x_real.device, self.x_real.dtype)
        return self._curricula[T]

    def targets(self, T: int) -> list[Tensor]:
        """What the meta-gradient is taken with respect to: teacher weights, codes, raw lr, raw momentum."""
        return [*self.teacher.parameters(), self.curriculum(T).codes, self.sgd.raw_lr, self.sgd.raw_momentum]

    def target_names(self) -> list[str]:
        """Names matching `targets`."""
        return [f"teacher.{k}" for k, _ in self.teacher.named_parameters()] + ["codes", "raw_lr", "raw_momentum"]


def build_problem(*, teacher_hidden: int = 1024, teacher_channels: int = 128, teacher_conv: int = 64,
                  latent_dim: int = 128, image: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10,
                  channels: tuple[int, int] | None = None, hidden: int | None = None, batch: int = 70,
                  real_batch: int = 128, seed: int = 0, dtype: torch.dtype = torch.float32,
                  device: str = "cpu") -> CostProblem:
    """The benchmark problem. Default: appendix A's generator and one MNIST learner.

    Without `channels`, the learner is `ArchSpace.mnist().sample()` drawn with `seed`
    (seed 0: conv channels (89, 75), hidden 144). The real batch is Gaussian noise with
    random labels: the cost does not depend on the pixels.
    """
    torch.manual_seed(seed)
    if channels is None:
        learner = ArchSpace.mnist(image, num_classes).sample(torch.Generator().manual_seed(seed))
    else:
        learner = ConvLearner(image, num_classes, channels, hidden=hidden)
    teacher = Teacher(image, num_classes, latent_dim=latent_dim, hidden=teacher_hidden, channels=teacher_channels,
                      conv_channels=teacher_conv)
    sgd = FusedSGD(0.02, 0.5)  # Table 2's initial values, one shared pair; the update the library's arms run
    g = torch.Generator().manual_seed(seed + 1)
    x_real = torch.randn(real_batch, *image, generator=g)
    y_real = torch.randint(num_classes, (real_batch,), generator=g)
    to = dict(device=device, dtype=dtype)
    return CostProblem(learner.to(**to), teacher.to(**to), sgd.to(**to), x_real.to(**to), y_real.to(device),
                       batch, seed)


def learner_summary(p: CostProblem) -> dict:
    """Sizes that make the memory target checkable."""
    state = p.learner.init_state()
    return {"conv_channels": [c.out_channels for c in p.learner.convs],
            "hidden": p.learner.hidden.out_features if p.learner.hidden is not None else None,
            "learner_params": sum(t.numel() for t in state.params.values()),
            "state_bytes": state.num_bytes(),
            "teacher_params": sum(t.numel() for t in p.teacher.parameters())}


def _hyper(p: CostProblem) -> tuple[Tensor, Tensor]:
    return p.sgd.raw_lr[0].exp(), p.sgd.raw_momentum[0].sigmoid()  # alpha = e^a, beta = sigmoid(b)


def _grads(p: CostProblem, T: int, meta_loss: Tensor, n_skip: int = 0) -> list[Tensor | None]:
    """Meta-gradient w.r.t. the targets, leaving out the last `n_skip` (a peer that cannot learn them)."""
    wrt = p.targets(T)
    wrt = wrt[:len(wrt) - n_skip]
    grads = torch.autograd.grad(meta_loss, wrt, allow_unused=True)  # T=1: the momentum is never used
    return [torch.zeros_like(w) if g is None else g for g, w in zip(grads, wrt)] + [None] * n_skip


def _last_bn_stats(module: torch.nn.Module) -> dict[str, Tensor]:
    """The batch statistics that `LearnerBatchNorm` layers recorded in their last training forward."""
    stats = {}
    for name, m in module.named_modules():
        if isinstance(m, LearnerBatchNorm) and m.last_stats is not None:
            stats[f"{name}.running_mean"], stats[f"{name}.running_var"] = m.last_stats
            m.last_stats = None
    return stats


# ---------------------------------------------------------------- training only
def plain(p: CostProblem, T: int) -> Run:
    """T ordinary SGD-with-momentum steps of the module learner on the teacher's batches."""
    learner = copy.deepcopy(p.learner).train()
    lr, mom = (float(v.detach()) for v in _hyper(p))
    opt = torch.optim.SGD(learner.parameters(), lr=lr, momentum=mom)
    batches = p.teacher.batches(p.curriculum(T))

    def run() -> list[Tensor | None]:
        for t in range(T):
            with torch.no_grad():
                x, y = batches.batch(t, batches.tensors)
            loss = learner.outer_loss(learner(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return [None] * len(p.targets(T))

    run.learner = learner  # for the agreement check
    return run


def gtn_nograd(p: CostProblem, T: int) -> Run:
    """The same plain training through the library (`differentiable=False`)."""
    sgd = copy.deepcopy(p.sgd)

    def run() -> list[Tensor | None]:
        run.state = sgd.unroll(p.learner, p.teacher.batches(p.curriculum(T)), differentiable=False)
        return [None] * len(p.targets(T))

    return run


# ---------------------------------------------------------------- meta-gradients
def _gtn(mode: str) -> Callable[[CostProblem, int], Run]:
    def prepare(p: CostProblem, T: int) -> Run:
        def run() -> list[Tensor | None]:
            p.sgd.mode = mode
            state = p.sgd.unroll(p.learner, p.teacher.batches(p.curriculum(T)))
            return _grads(p, T, p.learner.meta_loss(state, p.x_real, p.y_real))
        return run
    prepare.__doc__ = f"gtn_edu's `{mode}` meta-gradient."
    return prepare


def higher_variant(p: CostProblem, T: int) -> Run:
    """`higher.innerloop_ctx` with torch.optim.SGD; lr and momentum as differentiable overrides."""
    import higher

    model = p.learner
    opt = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.5)
    names = [k for k, _ in model.named_parameters()]

    def run() -> list[Tensor | None]:
        lr, mom = _hyper(p)
        model.train()
        batches = p.teacher.batches(p.curriculum(T))
        with higher.innerloop_ctx(model, opt, copy_initial_weights=True, track_higher_grads=True,
                                  override={"lr": [lr], "momentum": [mom]}) as (fmodel, diffopt):
            for t in range(T):
                x, y = batches.batch(t, batches.tensors)
                diffopt.step(model.outer_loss(fmodel(x), y))
            stats = _last_bn_stats(fmodel)
            state = LearnerState(dict(zip(names, fmodel.parameters())), {}, stats)
            return _grads(p, T, model.meta_loss(state, p.x_real, p.y_real))

    return run


def torchopt_variant(p: CostProblem, T: int) -> Run:
    """`torchopt.sgd` used functionally on `Learner.inner_batch_loss`; lr and momentum as tensors."""
    import torchopt

    def run() -> list[Tensor | None]:
        lr, mom = _hyper(p)
        opt = torchopt.sgd(lr=lr, momentum=mom)  # a fresh transform: its momentum trace has a first-call flag
        state = p.learner.init_state()
        params = {k: v.requires_grad_() for k, v in state.params.items()}
        opt_state = opt.init(params)
        batches = p.teacher.batches(p.curriculum(T))
        stats = state.buffers
        for t in range(T):
            x, y = batches.batch(t, batches.tensors)
            loss, stats = p.learner.inner_batch_loss(params, state.buffers, x, y)
            grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
            updates, opt_state = opt.update(dict(zip(params, grads)), opt_state, inplace=False)
            params = torchopt.apply_updates(params, updates, inplace=False)
        final = LearnerState(params, {}, stats)
        return _grads(p, T, p.learner.meta_loss(final, p.x_real, p.y_real))

    return run


VARIANTS: dict[str, Callable[[CostProblem, int], Run]] = {
    "plain": plain, "gtn_nograd": gtn_nograd, "gtn_full": _gtn("full"), "gtn_recompute": _gtn("recompute"),
    "higher": higher_variant, "torchopt": torchopt_variant}
META_VARIANTS = ("gtn_full", "gtn_recompute", "higher", "torchopt")
_NEEDS = {"higher": "higher", "torchopt": "torchopt"}


def available(name: str) -> bool:
    """Whether the package a variant needs imports here (`pip install -e ".[bench]"`).

    An installed package that fails to import counts as missing: a bare GPU machine may
    have torchopt without the graphviz it imports.
    """
    return missing_reason(name) is None


def missing_reason(name: str) -> str | None:
    """Why variant `name` cannot run here (None: it can)."""
    if name not in _NEEDS:
        return None
    if importlib.util.find_spec(_NEEDS[name]) is None:
        return f"{_NEEDS[name]} is not installed"
    try:
        importlib.import_module(_NEEDS[name])
    except Exception as err:  # noqa: BLE001 - any import failure means: skip this peer
        return f"{_NEEDS[name]} does not import ({type(err).__name__}: {err})"
    return None
