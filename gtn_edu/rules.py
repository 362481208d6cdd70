r"""Two inner optimisers beyond eq. (1), each one subclass of `UnrolledSGD`.

An inner rule is three things (`UnrolledSGD`): the state it keeps (`init_opt_state`), one
step (`update`), and its meta-learned tensors (every `nn.Parameter` of the optimiser:
`meta_tensors`). Both modes of `unroll` handle the rest: the state is stored and
recomputed with the weights in `checkpoint` mode, and every parameter gets its
meta-gradient (`tests/test_rules.py` checks both rules against finite differences in
float64, in both modes, and the modes against each other).

`LearnedDecaySGD`, SGD with momentum and a meta-learned weight decay $\lambda = e^{w}$:

$$ g_t \leftarrow g_t + \lambda\,\theta_t, \quad\text{then eq. (1).} $$

`InnerAdam`, Adam (Kingma & Ba, 2015) as the inner optimiser, with $\alpha = e^{a}$,
$\beta_1 = \sigma(b)$ (the base class's lr and momentum) and $\beta_2 = \sigma(c)$ all
meta-learned; $n$ counts the steps taken:

$$ m_{n} = \beta_1 m_{n-1} + (1-\beta_1)\, g, \qquad v_{n} = \beta_2 v_{n-1} + (1-\beta_2)\, g^2, $$
$$ \theta \leftarrow \theta - \alpha\, \frac{m_n / (1-\beta_1^{n})}{\sqrt{v_n / (1-\beta_2^{n}) + \epsilon}}. $$

$\epsilon$ sits inside the root (not added after it, as in `torch.optim.Adam`): the square
root's derivative is infinite at 0, and a weight whose gradient is exactly zero would make
the meta-gradient NaN.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from .checks import positive_float, unit_interval
from .unrolled import UnrolledSGD

__all__ = ["LearnedDecaySGD", "InnerAdam"]


# --8<-- [start:decay]
class LearnedDecaySGD(UnrolledSGD):
    r"""SGD with momentum plus a meta-learned weight decay $\lambda = e^{w}$ (`log_decay` is $w$).

    Args:
        lr: initial $\alpha$.
        momentum: initial $\beta$.
        decay: initial $\lambda > 0$.
        **kwargs: `UnrolledSGD`'s `steps`, `mode`, `learn`.
    """

    def __init__(self, lr: float = 0.02, momentum: float = 0.5, *, decay: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(lr, momentum, **kwargs)
        positive_float("decay", decay)
        self.log_decay = nn.Parameter(torch.tensor(float(decay)).log())

    @property
    def decay(self) -> Tensor:
        r"""$\lambda = e^{w}$."""
        return self.log_decay.exp()

    def update(self, params: dict[str, Tensor], grads: dict[str, Tensor], opt_state: dict[str, Tensor],
               lr: Tensor, beta: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        decayed = {k: g + self.decay * params[k] for k, g in grads.items()}  # g + lambda theta
        return super().update(params, decayed, opt_state, lr, beta)   # then eq. (1)
# --8<-- [end:decay]


# --8<-- [start:adam]
class InnerAdam(UnrolledSGD):
    r"""Adam as the inner optimiser, with $\alpha$, $\beta_1$, $\beta_2$ meta-learned (see the module docstring).

    Its state per weight `k` is `m.k` and `v.k`, the two moments, plus one `step` count.

    Args:
        lr: initial $\alpha$.
        beta1: initial $\beta_1$ (the base class's momentum, $\sigma(b)$).
        beta2: initial $\beta_2 = \sigma(c)$ (`raw_beta2` is $c$).
        eps: $\epsilon$, inside the square root.
        **kwargs: `UnrolledSGD`'s `steps`, `mode`, `learn`.
    """

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, *, eps: float = 1e-8,
                 **kwargs: Any) -> None:
        super().__init__(lr, beta1, **kwargs)
        unit_interval("beta2", beta2)
        positive_float("eps", eps)
        self.raw_beta2 = nn.Parameter(torch.tensor(float(beta2)).logit())
        self.eps = eps

    def init_opt_state(self, params: dict[str, Tensor]) -> dict[str, Tensor]:
        """Both moments zero for every weight, and a step count of zero."""
        first = next(iter(params.values()))
        return {**{f"m.{k}": torch.zeros_like(p) for k, p in params.items()},
                **{f"v.{k}": torch.zeros_like(p) for k, p in params.items()},
                "step": torch.zeros((), dtype=first.dtype, device=first.device)}

    def update(self, params: dict[str, Tensor], grads: dict[str, Tensor], opt_state: dict[str, Tensor],
               lr: Tensor, beta: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        state, beta1, beta2 = opt_state, beta, self.raw_beta2.sigmoid()
        n = state["step"] + 1
        m = {k: beta1 * state[f"m.{k}"] + (1 - beta1) * g for k, g in grads.items()}      # first moment
        v = {k: beta2 * state[f"v.{k}"] + (1 - beta2) * g * g for k, g in grads.items()}  # second moment
        c1, c2 = 1 - beta1 ** n, 1 - beta2 ** n                                           # bias corrections
        new_p = {k: p - lr * (m[k] / c1) / torch.sqrt(v[k] / c2 + self.eps) for k, p in params.items()}
        return new_p, {**{f"m.{k}": t for k, t in m.items()}, **{f"v.{k}": t for k, t in v.items()}, "step": n}
# --8<-- [end:adam]
