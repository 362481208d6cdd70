"""`CartPoleConfig`: every setting of a CartPole GTN run, validated when made.

What appendix H states is the default: a batch of 512 generated pairs, ONE inner SGD step,
policies and critic with one hidden layer of 64 tanh units, episodes of at most 200 steps,
the A2C meta-objective. The paper does not give the rest (outer learning rate, number of
outer iterations, episodes per iteration, generator size); the defaults below are this
library's, chosen on a 2-core CPU (CHANGELOG.md, "Session 7", CartPole). `SIZES` shrink or grow the
run: `tiny` (seconds, for CI), `quick` (the CPU run of the tutorial), `paper` (longer, with
more episodes per outer iteration and no weight normalisation, as the paper ran it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..checks import boolean, nonnegative_int, one_of, positive_float, positive_int, unit_interval

__all__ = ["CartPoleConfig", "SIZES"]


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
        lr_schedule: "constant" or "cosine" (anneal the outer learning rate to 0).
        num_envs: episodes each learner plays per outer iteration.
        learners: fresh policies per outer iteration (the meta-loss is their mean).
        max_steps: episode cap (the paper: 200; CartPole-v1's own: 500).
        gamma: discount of the returns.
        normalize: standardise each batch's advantages.
        value_lr: Adam learning rate of the critic.
        value_steps: critic steps per outer iteration.
        eval_every: outer iterations between points of the learning curve.
        curve_policies: fresh policies per learning-curve point.
        eval_policies: fresh policies in the final score (the issue's target: at least 20).
        eval_episodes: greedy episodes per policy.
        a2c_env_steps: environment steps of the A2C control (0: none).
        a2c_lr: Adam learning rate of the A2C control's policy.
        seed: seed of every random stream.
        device: "cpu" or "cuda".
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
    lr_schedule: str = "cosine"
    num_envs: int = 32
    learners: int = 1
    max_steps: int = 200
    gamma: float = 0.99
    normalize: bool = True
    value_lr: float = 0.01
    value_steps: int = 5
    eval_every: int = 10
    curve_policies: int = 5
    eval_policies: int = 20
    eval_episodes: int = 10
    a2c_env_steps: int = 300_000
    a2c_lr: float = 0.01
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        """Check every field's range (finite numbers only); ValueError names the field and the value."""
        positive = ("inner_batch", "inner_steps", "policy_hidden", "latent_dim", "teacher_hidden", "outer_steps",
                    "num_envs", "learners", "max_steps", "eval_every", "curve_policies", "eval_policies",
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
        one_of("CartPoleConfig.lr_schedule", self.lr_schedule, ("constant", "cosine"))
        if not isinstance(self.device, str) or self.device.split(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"CartPoleConfig.device must be 'cpu' or 'cuda' (or 'cuda:N'), got {self.device!r}")

    @classmethod
    def sized(cls, size: str, **changes) -> CartPoleConfig:
        """The config of `size` ("tiny", "quick" or "paper"), with `changes` on top."""
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose one of {sorted(SIZES)}")
        return replace(cls(), **{**SIZES[size], **changes})

    @classmethod
    def from_dict(cls, d: dict) -> CartPoleConfig:
        """A config from `asdict` output (a checkpoint's); ValueError naming any key it does not know."""
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"CartPoleConfig has no field(s) {', '.join(unknown)}; a config from another "
                             "version or another task? (GTNConfig.from_dict refuses unknown keys the same way)")
        return cls(**d)

    def to_dict(self) -> dict:
        """`asdict(self)`: JSON-able, what checkpoints store."""
        return asdict(self)


SIZES = {
    "tiny": {"outer_steps": 3, "num_envs": 4, "max_steps": 30, "eval_every": 2, "curve_policies": 2,
             "eval_policies": 2, "eval_episodes": 2, "a2c_env_steps": 300, "inner_batch": 64},
    "quick": {},
    "paper": {"outer_steps": 1000, "num_envs": 64, "weight_norm": False, "a2c_env_steps": 1_000_000},
}
"""Changes from the defaults of each run size. `quick` is the defaults."""
