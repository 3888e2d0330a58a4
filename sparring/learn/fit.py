"""Moving the model's policy onto a target table at every information state by damped
Gauss-Newton (Levenberg-Marquardt) in the adapter's weights.

A policy table over a small game's information states is a few dozen numbers; the
adapter has about a million weights. First-order steps on the squared log-gap crawl
(AdamW at lr 2e-4 took the gap down about 5% a step on the embedded model in Kuhn
poker) or overshoot (lr 5e-3), so a policy that must follow a moving target lags it.
Gauss-Newton linearises the residuals r(theta), each state's log pi minus log target
for its answers after the first relative to the first, and takes the smallest weight
step that zeroes the linearised residuals, damped:

    delta = -J^T (J J^T + mu * mean(diag J J^T) * I)^-1 r

the kernel form of the Levenberg-Marquardt step for m residuals and n >> m weights
(Nocedal & Wright, "Numerical Optimization", 2006, §10.3). The damping mu shrinks
after a step that lowers the squared gap and grows after one that does not, which is
then undone (Marquardt 1963).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sparring.learn.loss import option_log_policies
from sparring.learn.rollout import Sample

MAX_RESIDUALS = 512  # rows of J kept in memory: J is residuals x adapter weights (about 1e6) floats
_MU_RANGE = (1e-9, 1e6)


def log_gap_residuals(log_pi: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A state's residuals: log pi - log target for answers 2..k, each relative to
    answer 1's (softmax logits are defined up to a constant); zero where pi = target.
    In log space, not a KL: a KL barely sees 1e-8 against 1e-7 on a nearly certain
    answer, and a policy stays stuck at the pure strategy a target slowly leaves."""
    gap = log_pi - torch.log(target.clamp_min(1e-30))  # 1e-30: an answer the target all but rules out
    return gap[1:] - gap[:1]


def squared_gap(log_pis: list[torch.Tensor], targets: list[torch.Tensor]) -> float:
    """Mean over states of the summed squared residuals."""
    return float(sum(float((log_gap_residuals(lp, t) ** 2).sum()) for lp, t in zip(log_pis, targets)) / len(targets))


def trainable(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def residuals_and_jacobian(model, samples: list[Sample], targets: list[torch.Tensor],
                           pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """r [m] (float64) and J = dr/dtheta [m, n] over the trainable weights, one state
    at a time: a state's residuals depend on its own prompt only, so its own forward
    and backward (225 tokens in Kuhn) cost far less than a backward per residual
    through the whole batch."""
    params = trainable(model)
    values, rows = [], []
    for sample, target in zip(samples, targets):
        residuals = log_gap_residuals(option_log_policies(model, [sample], pad_id, "cpu")[0], target)
        for j in range(len(residuals)):
            grads = torch.autograd.grad(residuals[j], params, retain_graph=j + 1 < len(residuals), allow_unused=True)
            rows.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float()
                                   for g, p in zip(grads, params)]))
            values.append(float(residuals[j].detach()))
    return torch.tensor(values, dtype=torch.float64), torch.stack(rows)


def damped_step(jac: torch.Tensor, r: torch.Tensor, damping: float) -> torch.Tensor:
    """-J^T (J J^T + damping * mean(diag J J^T) * I)^-1 r: as damping goes to 0, the
    smallest step that zeroes the linearised residuals (the minimum-norm least
    squares solution of J delta = -r); as it grows, a short gradient step."""
    gram = jac.double() @ jac.double().T
    scale = float(gram.diagonal().mean()) or 1.0
    damped = gram + damping * scale * torch.eye(len(r), dtype=torch.float64)
    return -(jac.T @ torch.linalg.solve(damped, r.double()).to(jac.dtype))


class LevenbergMarquardt:
    """Damped Gauss-Newton steps of the trainable weights toward per-state targets."""

    def __init__(self, model, pad_id: int, damping: float = 1e-3):
        self.model, self.pad_id, self.damping = model, pad_id, damping
        self.params = trainable(model)

    def step(self, samples: list[Sample], targets: list[torch.Tensor], now: list[torch.Tensor],
             read: Callable[[], list[torch.Tensor]], tries: int = 6) -> list[torch.Tensor]:
        """One step that lowers the squared gap, or none after `tries` damped ones
        that do not. `now` are the log-policies at every state under the current
        weights and `read` reads them again; returns them under the weights left."""
        before = squared_gap(now, targets)
        r, jac = residuals_and_jacobian(self.model, samples, targets, self.pad_id)
        saved = [p.detach().clone() for p in self.params]
        for _ in range(tries):
            self._set(saved, damped_step(jac, r, self.damping))
            log_pis = read()
            if squared_gap(log_pis, targets) < before:
                self.damping = max(self.damping / 3, _MU_RANGE[0])
                return log_pis
            self.damping = min(self.damping * 4, _MU_RANGE[1])
        self._set(saved, None)
        return now

    @torch.no_grad()
    def _set(self, saved: list[torch.Tensor], delta: torch.Tensor | None) -> None:
        """The weights `saved` plus `delta` (flattened in parameter order)."""
        offset = 0
        for p, base in zip(self.params, saved):
            p.copy_(base if delta is None else base + delta[offset:offset + p.numel()].view_as(p).to(p.dtype))
            offset += p.numel()
