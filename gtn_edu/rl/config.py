"""`CartPoleConfig`: every setting of a CartPole GTN run, validated when made.

What appendix H states is the default: a batch of 512 generated pairs, ONE inner SGD step,
policies and critic with one hidden layer of 64 tanh units, episodes of at most 200 steps,
the A2C meta-objective. The paper does not give the rest (outer learning rate, number of
outer iterations, episodes per iteration, generator size); the defaults below are this
library's, chosen on a 2-core CPU (CHANGELOG.md, "Session 7", CartPole). `SIZES` shrink or grow the
run: `tiny` (seconds, for CI), `quick` (the CPU run of the tutorial), `paper` (longer, with
more episodes per outer iteration and no weight normalisation, as the paper ran it).

Three fields take the image config's (`GTNConfig`'s) names since issue 24: `RENAMED` maps
the old names (`learners`, `lr_schedule`, `eval_policies`) to them. The old names still
work, with a `DeprecationWarning`, as keywords (`CartPoleConfig(learners=2)`,
`CartPoleConfig.sized("tiny", eval_policies=3)`) and as attributes (`cfg.learners`); a
dict saved before the rename (a checkpoint's, a summary's) loads silently by `from_dict`.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import asdict, dataclass, fields, replace

from ..checks import boolean, nonnegative_int, one_of, positive_float, positive_int, unit_interval

__all__ = ["CartPoleConfig", "SIZES", "RENAMED", "new_names"]

RENAMED = {"learners": "learners_per_step", "lr_schedule": "outer_lr_schedule", "eval_policies": "eval_learners"}
"""Old `CartPoleConfig` field names (before issue 24) -> the image config's names that replaced them."""


def new_names(d: dict, *, warn: bool = True) -> dict:
    """A copy of `d` with each old key of `RENAMED` under its new name (a DeprecationWarning each if `warn`).

    ValueError if `d` holds both names of one field.
    """
    out = dict(d)
    for old, new in RENAMED.items():
        if old not in out:
            continue
        if new in out:
            raise ValueError(f"CartPoleConfig got both {old} (the old name) and {new}; give only {new}")
        if warn:
            warnings.warn(f"CartPoleConfig's {old} is now called {new}, as in GTNConfig; use {new}",
                          DeprecationWarning, stacklevel=3)
        out[new] = out.pop(old)
    return out


def _old_name(old: str) -> property:
    """`cfg.<old>`: reads and writes the renamed field, with a DeprecationWarning. A property, not a field."""
    new = RENAMED[old]

    def warn() -> None:
        warnings.warn(f"CartPoleConfig.{old} is now CartPoleConfig.{new}; use {new}", DeprecationWarning,
                      stacklevel=3)

    def get(self):
        warn()
        return getattr(self, new)

    def set_(self, value) -> None:
        warn()
        setattr(self, new, value)

    return property(get, set_, doc=f"Deprecated: the old name of `{new}`.")


def _accepts_old_names(cls):
    """Let `cls(...)` take the old field names of `RENAMED` too, with a DeprecationWarning.

    The dataclass's generated `__init__` knows only the fields, and writing `__init__` by
    hand would repeat all of them; so the generated one is kept and wrapped: the wrapper
    renames old keywords (`new_names`) and calls it. `replace`, `sized` and `from_dict` all
    build through it.
    """
    init = cls.__init__

    @functools.wraps(init)
    def __init__(self, *args, **kwargs) -> None:
        init(self, *args, **new_names(kwargs))

    cls.__init__ = __init__
    return cls


@_accepts_old_names
@dataclass
class CartPoleConfig:
    """One CartPole GTN run.

    Attributes:
        inner_batch: generated (state, target) pairs per inner step (appendix H: 512).
        inner_steps: T, SGD steps of each fresh policy (appendix H: 1).
        policy_hidden: hidden width of policies and critic (appendix H: 64).
        latent_dim: size of the generator's codes.
        teacher_hidden: width of the generator's two hidden layers.
        weight_norm: weight-normalise the generator.
        init_lr: initial inner learning rate (learned).
        init_momentum: initial inner momentum (learned; no effect when T = 1).
        outer_lr: Adam learning rate of generator, codes and inner lr.
        outer_steps: outer iterations.
        outer_lr_schedule: "constant" or "cosine" (anneal the outer learning rate to 0).
        num_envs: episodes each learner plays per outer iteration.
        learners_per_step: fresh policies per outer iteration (the meta-loss is their mean).
        max_steps: episode cap (the paper: 200; CartPole-v1's own: 500).
        gamma: discount of the returns.
        normalize: standardise each batch's advantages.
        value_lr: Adam learning rate of the critic.
        value_steps: critic steps per outer iteration.
        eval_every: outer iterations between points of the learning curve.
        curve_policies: fresh policies per learning-curve point.
        eval_learners: fresh policies in the final score (the issue's target: at least 20).
        eval_episodes: greedy episodes per policy.
        a2c_env_steps: environment steps of the A2C control (0: none).
        a2c_lr: Adam learning rate of the A2C control's policy.
        seed: seed of every random stream.
        device: "cpu" or "cuda".

    The old names `learners`, `lr_schedule` and `eval_policies` (`RENAMED`) are accepted as
    keywords and attributes, with a DeprecationWarning naming the new one.
    """

    inner_batch: int = 512
    inner_steps: int = 1
    policy_hidden: int = 64
    latent_dim: int = 32
    teacher_hidden: int = 64
    weight_norm: bool = True
    init_lr: float = 0.1
    init_momentum: float = 0.5
    outer_lr: float = 0.01
    outer_steps: int = 200
    outer_lr_schedule: str = "cosine"
    num_envs: int = 32
    learners_per_step: int = 1
    max_steps: int = 200
    gamma: float = 0.99
    normalize: bool = True
    value_lr: float = 0.01
    value_steps: int = 5
    eval_every: int = 10
    curve_policies: int = 5
    eval_learners: int = 20
    eval_episodes: int = 10
    a2c_env_steps: int = 300_000
    a2c_lr: float = 0.01
    seed: int = 0
    device: str = "cpu"

    # The old names, as attributes (no annotation, so no dataclass fields).
    learners = _old_name("learners")
    lr_schedule = _old_name("lr_schedule")
    eval_policies = _old_name("eval_policies")

    def __post_init__(self) -> None:
        """Check every field's range (finite numbers only); ValueError names the field and the value."""
        positive = ("inner_batch", "inner_steps", "policy_hidden", "latent_dim", "teacher_hidden", "outer_steps",
                    "num_envs", "learners_per_step", "max_steps", "eval_every", "curve_policies", "eval_learners",
                    "eval_episodes")
        for name in positive:
            positive_int(f"CartPoleConfig.{name}", getattr(self, name))
        for name in ("value_steps", "a2c_env_steps", "seed"):
            nonnegative_int(f"CartPoleConfig.{name}", getattr(self, name))
        for name in ("init_lr", "outer_lr", "value_lr", "a2c_lr"):
            positive_float(f"CartPoleConfig.{name}", getattr(self, name))
        unit_interval("CartPoleConfig.init_momentum", self.init_momentum)
        unit_interval("CartPoleConfig.gamma", self.gamma, high_open=False)
        for name in ("weight_norm", "normalize"):
            boolean(f"CartPoleConfig.{name}", getattr(self, name))
        one_of("CartPoleConfig.outer_lr_schedule", self.outer_lr_schedule, ("constant", "cosine"))
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"CartPoleConfig.device must be 'cpu' or 'cuda' (or 'cuda:N'), got {self.device!r}")

    @classmethod
    def sized(cls, size: str, **changes) -> CartPoleConfig:
        """The config of `size` ("tiny", "quick" or "paper"), with `changes` on top (old names: a warning)."""
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
        return replace(cls(), **{**SIZES[size], **new_names(changes)})

    @classmethod
    def from_dict(cls, d: dict) -> CartPoleConfig:
        """A config from `asdict` output (a checkpoint's); ValueError naming any key it does not know.

        A dict saved before the rename (old keys of `RENAMED`) loads as it is, without a
        warning: the file is not the caller's code to fix, and its run rewrites it with the
        new names when it resumes.
        """
        d = new_names(d, warn=False)
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"CartPoleConfig has no field(s) {', '.join(unknown)}; a config from another "
                             "version or another task? (GTNConfig.from_dict refuses unknown keys the same way)")
        return cls(**d)

    def to_dict(self) -> dict:
        """`asdict(self)`: JSON-able, what checkpoints store (the new names only)."""
        return asdict(self)


SIZES = {
    "tiny": {"outer_steps": 3, "num_envs": 4, "max_steps": 30, "eval_every": 2, "curve_policies": 2,
             "eval_learners": 2, "eval_episodes": 2, "a2c_env_steps": 300, "inner_batch": 64},
    "quick": {},
    "paper": {"outer_steps": 1000, "num_envs": 64, "weight_norm": False, "a2c_env_steps": 1_000_000},
}
"""Changes from the defaults of each run size. `quick` is the defaults."""
