r"""`FusedSGD`: eq. (1) on one concatenated vector instead of tensor by tensor.

The plain rule (`UnrolledSGD.update`) runs four operations per weight tensor: for a
learner with a dozen tensors that is about fifty small operations a step, and as many
again in the backward pass. Here every dict of tensors becomes one vector,

$$ m_{t+1} = \beta\,[m_t^{(1)}; \dots; m_t^{(n)}] + [g_t^{(1)}; \dots; g_t^{(n)}], \qquad
   \theta_{t+1} = [\theta_t^{(1)}; \dots; \theta_t^{(n)}] - \alpha\, m_{t+1}, $$

and is split back into views of the original shapes. Element by element the arithmetic
is the plain rule's; only the order in which the lr and momentum gradients are summed
differs (`tests/test_unrolled_sgd.py` checks both against each other in float64). The library's
own arms use it (`experiment.build_arm`, `rl.experiment`); a subclass of `UnrolledSGD`
that overrides `update` keeps its own rule.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..unrolled import UnrolledSGD

__all__ = ["FusedSGD"]


class FusedSGD(UnrolledSGD):
    """`UnrolledSGD` whose update runs on concatenated vectors (same arguments, same state)."""

    fingerprint_name = "UnrolledSGD"  # the same rule: evaluation caches keyed by `data.fingerprint` stay valid

    def update(self, params: dict[str, Tensor], grads: dict[str, Tensor], opt_state: dict[str, Tensor],
               lr: Tensor, beta: Tensor) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Eq. (1) on one vector per dict; the plain rule where the tensors cannot be joined (`_joinable`)."""
        names = list(params)
        if not _joinable(names, params, grads, opt_state):
            return super().update(params, grads, opt_state, lr, beta)
        sizes = [params[k].numel() for k in names]
        m = beta * _join(names, opt_state) + _join(names, grads)  # eq. (1), momentum buffer
        p = _join(names, params) - lr * m                                # eq. (1), weight update
        return _split(names, params, p, sizes), _split(names, params, m, sizes)


def _joinable(names: list[str], *dicts: dict[str, Tensor]) -> bool:
    """Whether the update can run on concatenated vectors: several tensors, contiguous, one dtype and device.

    Channels-last weights (the NAS evaluations) keep the per-tensor rule, which preserves
    their memory format.
    """
    if len(names) < 2:
        return False
    first = dicts[0][names[0]]
    return all(d[k].is_contiguous() and d[k].dtype == first.dtype and d[k].device == first.device
               for d in dicts for k in names)


def _join(names: list[str], d: dict[str, Tensor]) -> Tensor:
    return torch.cat([d[k].reshape(-1) for k in names])


def _split(names: list[str], like: dict[str, Tensor], flat: Tensor, sizes: list[int]) -> dict[str, Tensor]:
    return {k: t.view(like[k].shape) for k, t in zip(names, flat.split(sizes))}
