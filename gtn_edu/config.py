"""Configurations with the paper's defaults (Tables 2 and 3); the CPU sizes are in `gtn_edu.sizes`.

A config is a plain dataclass that validates itself when it is made (so
`dataclasses.replace` checks variants too): the CLI builds its options from the fields, a
checkpoint stores `asdict(config)`. Each task has its own config (this one is the
supervised image task's; the NAS and RL tasks bring theirs) with its own checks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .arch_space import ARCH_SPACES
from .checks import (
    UNROLL_MODES,
    boolean,
    nonnegative_int,
    one_of,
    positive_float,
    positive_int,
    registered,
    unit_interval,
    unroll_mode,
    upgraded_config,
)
from .curriculum import VARIANTS
from .datasets import DATASETS, NUM_CLASSES
from .sizes import CIFAR_QUICK_CHANGES, QUICK_CHANGES, quick  # noqa: F401 - their home before gtn_edu.sizes
from .sizes import sized as _sized

__all__ = ["GTNConfig", "MNISTConfig", "CIFARConfig", "PAPER_TABLES", "quick", "validate", "config_for",
           "NUM_CLASSES", "QUICK_CHANGES", "CIFAR_QUICK_CHANGES"]


@dataclass
class GTNConfig:
    """Everything that defines one GTN run. Defaults: MNIST, Table 2.

    Attributes:
        dataset: "mnist", "fashion-mnist" or "cifar10" (or a name added with
            `gtn_edu.datasets.register_dataset`).
        inner_steps: T, SGD steps of the learner on synthetic data.
        inner_batch: B, synthetic images per inner step (a multiple of the class count).
        outer_batch: real images in each meta-loss evaluation.
        outer_steps: outer (meta-training) iterations.
        outer_lr: Adam learning rate for teacher, curriculum, lr and momentum.
        hyper_lr: Adam learning rate for the inner lr and momentum (None: outer_lr).
        adam_betas: Adam (beta1, beta2).
        adam_eps: Adam epsilon.
        init_lr: initial inner learning rate alpha.
        init_momentum: initial inner momentum beta.
        per_step_hyper: learn one alpha_t, beta_t per inner step instead of one shared pair.
        latent_dim: size of the generator's code z.
        teacher_hidden: width of the generator's first FC layer.
        teacher_channels: channels of the generator's 1/4-resolution map.
        teacher_conv_channels: channels of the generator's middle conv.
        weight_norm: weight normalisation in generator and learners.
        curriculum: "full", "shuffled_batch", "all_shuffled" or "none" (or a name added with
            `gtn_edu.curriculum.register_curriculum_variant`).
        mode: "recompute" (store each step's state, recompute it backwards) or "full" (one
            autograd graph) unrolling; "checkpoint" is the old name of "recompute".
        compile_step: run each inner step through torch.compile, the learner's half
            (`gtn_edu.fast.CompiledSGD`) and the teacher's batch (`gtn_edu.fast.compile_teacher`):
            fewer, fused kernels, but every new conv architecture compiles again (see
            docs/benchmarks/cost.md); MLP learners compile once.
        meta_loss_every: also score the learner on real data every this many inner steps
            (0: only after the last step). The meta-loss is the mean over scored steps.
        arch: learner space, "mnist", "cifar" or "mlp" (or a name added with
            `gtn_edu.arch_space.register_arch_space`).
        arch_scale: multiply the learners' width ranges (quick mode shrinks them); the MNIST
            space's hidden FC layer keeps at least 32 units.
        grad_clip: clip the meta-gradient norm to this value (None: no clipping).
        augment: augment the real batches of the meta-loss with per-image random crops
            (4-pixel padding) and horizontal flips (CIFAR-10, appendix A.2).
        bn_stats: the BatchNorm statistics a trained learner is scored with, in the
            meta-loss and in evaluation alike, for every arm: "synthetic" (the last inner
            batch's, as the learner finished training: the paper's setting) or "real" (those
            of real training images: the meta-loss batch itself, and `evaluate.BN_IMAGES`
            training images when scoring on the test split).
        outer_lr_schedule: "constant" (the paper) or "cosine" (anneal to 0 over outer_steps).
        eval_learners: fresh learners used to measure few-step accuracy.
        learners_per_step: fresh learners per outer iteration, per process under torchrun
            (the meta-gradient is their mean; the paper: 1).
        stack_learners: train a step's learners as one when they share an architecture
            (`gtn_edu.fast.stacked`: states stacked, each inner step vmapped; the same meta-gradient).
            Meant for GPUs; on a CPU it paid only for small learners in recompute mode.
        seed: seed for everything random.
    """

    dataset: str = "mnist"
    inner_steps: int = 32
    inner_batch: int = 130  # paper: 128; balanced labels need a multiple of 10
    outer_batch: int = 128
    outer_steps: int = 2000
    outer_lr: float = 0.01
    hyper_lr: float | None = None
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    init_lr: float = 0.02
    init_momentum: float = 0.5
    per_step_hyper: bool = False
    latent_dim: int = 128
    teacher_hidden: int = 1024
    teacher_channels: int = 128
    teacher_conv_channels: int = 64
    weight_norm: bool = True
    curriculum: str = "full"
    mode: str = "recompute"
    compile_step: bool = False
    meta_loss_every: int = 0
    arch: str = "mnist"
    arch_scale: float = 1.0
    grad_clip: float | None = None
    augment: bool = False
    bn_stats: str = "synthetic"
    outer_lr_schedule: str = "constant"
    eval_learners: int = 5
    learners_per_step: int = 1
    stack_learners: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        self.mode = unroll_mode(self.mode)  # "checkpoint", the old name of "recompute", warns
        self.validate()

    @property
    def num_classes(self) -> int:
        """Classes of `dataset` (its `DatasetSpec`)."""
        return DATASETS[self.dataset].num_classes

    def validate(self) -> GTNConfig:
        """Raise ValueError naming the field, the value given and the allowed range; return self.

        Every number must be finite: an infinite learning rate or clipping limit would
        only fail later, as NaN in the weights.
        """
        registered("dataset", self.dataset, DATASETS, "gtn_edu.datasets.register_dataset")
        for name in ("inner_steps", "inner_batch", "outer_batch", "latent_dim", "teacher_hidden",
                     "teacher_channels", "teacher_conv_channels", "eval_learners", "learners_per_step"):
            positive_int(name, getattr(self, name))
        for name in ("outer_steps", "meta_loss_every", "seed"):
            nonnegative_int(name, getattr(self, name))
        k = self.num_classes
        if self.inner_batch % k:
            raise ValueError(f"inner_batch must be a multiple of the {k} classes of {self.dataset} (balanced "
                             f"labels), got {self.inner_batch}; e.g. {max(k, round(self.inner_batch / k) * k)}")
        for name in ("outer_lr", "init_lr", "adam_eps", "arch_scale"):
            positive_float(name, getattr(self, name))
        if self.hyper_lr is not None:
            positive_float("hyper_lr", self.hyper_lr)
        if self.grad_clip is not None:  # 0 would freeze training, a negative limit climb the meta-loss
            positive_float("grad_clip", self.grad_clip)
        unit_interval("init_momentum", self.init_momentum)
        if not (isinstance(self.adam_betas, (tuple, list)) and len(self.adam_betas) == 2):
            raise ValueError(f"adam_betas must be two numbers (beta1, beta2), got {self.adam_betas!r}")
        for i, beta in enumerate(self.adam_betas):
            unit_interval(f"adam_betas[{i}]", beta, low_open=False)
        for name in ("per_step_hyper", "weight_norm", "compile_step", "augment", "stack_learners"):
            boolean(name, getattr(self, name))
        registered("curriculum", self.curriculum, VARIANTS, "gtn_edu.curriculum.register_curriculum_variant")
        one_of("mode", self.mode, UNROLL_MODES)
        if self.stack_learners and self.compile_step:
            raise ValueError("stack_learners and compile_step cannot be combined; choose one")
        registered("arch", self.arch, ARCH_SPACES, "gtn_edu.arch_space.register_arch_space")
        one_of("bn_stats", self.bn_stats, ("synthetic", "real"))
        one_of("outer_lr_schedule", self.outer_lr_schedule, ("constant", "cosine"))
        if self.outer_lr_schedule == "cosine" and self.outer_steps < 1:
            raise ValueError(f"outer_steps must be >= 1 with outer_lr_schedule 'cosine' (it anneals over them), "
                             f"got {self.outer_steps}; give more outer steps or outer_lr_schedule 'constant'")
        return self

    def to_dict(self) -> dict:
        """A plain dict (what checkpoints store)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GTNConfig:
        """Rebuild a config from `to_dict()` output (unknown keys are an error; old value names are mapped)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(names)}")
        d = upgraded_config(dict(d))  # a file written before issue 24 says mode "checkpoint"
        if "adam_betas" in d:
            d["adam_betas"] = tuple(d["adam_betas"])
        return cls(**d)

    @classmethod
    def sized(cls, size: str, dataset: str = "mnist", **changes) -> GTNConfig:
        """The config of run size "tiny", "quick" or "paper" for `dataset`, `changes` on top (`gtn_edu.sizes`)."""
        return _sized(size, dataset, **changes)


def MNISTConfig(**overrides) -> GTNConfig:  # noqa: N802 - reads like a class, as in the paper's tables
    """Table 2 (MNIST) with optional overrides."""
    return replace(GTNConfig(), **overrides)


def CIFARConfig(**overrides) -> GTNConfig:  # noqa: N802
    """Table 3 (CIFAR-10) with optional overrides."""
    base = GTNConfig(dataset="cifar10", inner_steps=128, outer_batch=256, outer_lr=0.002,
                     adam_betas=(0.9, 0.9), adam_eps=1e-5, arch="cifar", meta_loss_every=16, augment=True)
    return replace(base, **overrides)


def validate(cfg: GTNConfig) -> GTNConfig:
    """`cfg.validate()`: raise ValueError naming the field and the fix; return cfg."""
    return cfg.validate()


PAPER_TABLES = {"mnist": MNISTConfig, "cifar10": CIFARConfig}
"""The config of each paper table a dataset can name (`DatasetSpec.table`, `gtn_edu.sizes.TABLES`)."""


def config_for(dataset: str, **overrides) -> GTNConfig:
    """The paper's table for `dataset`, the one its `DatasetSpec.table` names, with `overrides`.

    MNIST and Fashion-MNIST: Table 2; CIFAR-10: Table 3. The paper size of `gtn_edu.sizes.sized`.
    """
    return _sized("paper", dataset, **overrides)
