r"""CartPole with a GTN (appendix H): generated (state, action target) pairs teach a fresh policy in ONE step.

One outer iteration: a freshly initialised `PolicyLearner` (4 -> 64 tanh -> 2) takes one
SGD step (`UnrolledSGD`, T=1) on 512 pairs from a `PairTeacher`, regressing its action
scores on the targets (mean squared error); the trained policy plays real CartPole
episodes; `A2CObjective` turns them into the meta-loss
$-\frac1M\sum \log\pi(a|s)\,(R - V(s))$, whose gradient flows back through the inner step
into the teacher, its codes and the inner learning rate, while the critic $V$ learns.

* environment: `play`, `make_envs`, `Episodes` (gymnasium's CartPole-v1, the `rl` extra);
* the pieces: `PairTeacher`, `PolicyLearner`, `PolicySpace`, `ValueNet`, `A2CObjective`,
  `policy_gradient_loss`;
* scoring and the control: `one_step_returns`, `PolicyScores`, `train_a2c`;
* a whole run: `CartPoleConfig` (sizes `tiny`, `quick`, `paper`), `build_cartpole`,
  `run_cartpole` (resumable), figures in `gtn_edu.rl.plots`.

`gtn-edu rl --quick` runs it from the shell. Importing this package does not need
gymnasium; playing an episode does, and says how to install it.
"""

from .a2c import train_a2c
from .config import SIZES, CartPoleConfig
from .env import MAX_STEPS, Episodes, make_envs, play, require_gymnasium
from .evaluate import PolicyScores, one_step_returns
from .experiment import CartPoleRun, build_cartpole, run_cartpole
from .objective import A2CObjective, policy_gradient_loss
from .policy import PolicyLearner, PolicySpace, ValueNet
from .teacher import PairTeacher

__all__ = [
    "train_a2c", "SIZES", "CartPoleConfig", "MAX_STEPS", "Episodes", "make_envs", "play", "require_gymnasium",
    "PolicyScores", "one_step_returns", "CartPoleRun", "build_cartpole", "run_cartpole", "A2CObjective",
    "policy_gradient_loss", "PolicyLearner", "PolicySpace", "ValueNet", "PairTeacher",
]
