"""Advantage estimators for self-play policy gradients: small pure functions.

A batch is a list of samples, each one player's turn with the return `R` that the
player got at the end of its game and a *role* key, `(game, seat)`. Every
estimator turns the returns into advantages, centred per role, because in a
zero-sum game with a first-mover edge (Kuhn poker: -1/18 for the first player) a
shared baseline would tell one seat it always does badly and the other always well.

- RAE, role-conditioned advantage estimation (SPIRAL, arXiv 2506.24119, Alg. 1):
  one exponential moving average per role, updated with the batch's mean return of
  that role *before* the advantages are taken: `b <- a*b + (1-a)*mean(R)`,
  `A = R - b`, with a = 0.95. SPIRAL's Algorithm 1 updates the baseline first and
  then computes `A = R - b` with the updated value; we follow it. The batch mean
  enters with weight (1-a) only, so the estimate stays nearly independent of the
  sample it centres.
- GRPO: returns normalised within each role's group in the batch,
  `A = (R - mean) / (std + eps)` (population std), as in DeepSeekMath's GRPO.
- RLOO: leave-one-out mean of the other samples of the same role,
  `A = R - (sum - R) / (n - 1)` (Kool et al. 2019; Ahmadian et al. 2024); a role
  with one sample gets advantage 0.
- Expert iteration (STaR, Zelikman et al. 2022; ReST-EM, Singh et al. 2023): no
  baseline but a filter. A turn is kept (advantage 1) when its answer was valid and
  its game went well by the rule (`EXPERT_KEEP`), else dropped (0). With advantage 1
  the policy-gradient step at ratio 1 is a step of the kept turns' log-likelihood,
  so the trainer fine-tunes on the best of its own self-play by the recorded ids.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Sequence

Role = Hashable  # (game, seat)

RAE_DECAY = 0.95  # SPIRAL's alpha


def _groups(roles: Sequence[Role]) -> dict[Role, list[int]]:
    groups: dict[Role, list[int]] = defaultdict(list)
    for i, role in enumerate(roles):
        groups[role].append(i)
    return groups


def rae_advantages(
    returns: Sequence[float], roles: Sequence[Role], baselines: dict[Role, float], decay: float = RAE_DECAY,
) -> tuple[list[float], dict[Role, float]]:
    """Role-conditioned advantages and the updated baselines (the input is not
    mutated). A role seen for the first time starts from baseline 0."""
    updated = dict(baselines)
    for role, members in _groups(roles).items():
        batch_mean = sum(returns[i] for i in members) / len(members)
        updated[role] = decay * updated.get(role, 0.0) + (1 - decay) * batch_mean
    return [r - updated[role] for r, role in zip(returns, roles)], updated


def grpo_advantages(returns: Sequence[float], roles: Sequence[Role], eps: float = 1e-6) -> list[float]:
    """Group-normalised returns, one group per role in this batch."""
    advantages = [0.0] * len(returns)
    for members in _groups(roles).values():
        values = [returns[i] for i in members]
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        for i in members:
            advantages[i] = (returns[i] - mean) / (std + eps)
    return advantages


def rloo_advantages(returns: Sequence[float], roles: Sequence[Role]) -> list[float]:
    """Return minus the mean of the other samples of the same role."""
    advantages = [0.0] * len(returns)
    for members in _groups(roles).values():
        if len(members) < 2:
            continue
        total = sum(returns[i] for i in members)
        for i in members:
            advantages[i] = returns[i] - (total - returns[i]) / (len(members) - 1)
    return advantages


def expert_advantages(
    returns: Sequence[float], outcomes: Sequence[float], roles: Sequence[Role], valid: Sequence[bool], keep: str,
    baselines: dict[Role, float], decay: float = RAE_DECAY,
) -> tuple[list[float], dict[Role, float]]:
    """1 for each turn the rule keeps, 0 for the rest, and the updated RAE baselines
    of the training `returns`. keep="win": the player won the game by its own result
    (`outcomes`: the opponent's forfeit is a win, though its training reward may be
    0); keep="advantage": the training return beats the role's RAE baseline."""
    if keep not in EXPERT_KEEP:
        raise ValueError(f"expert keep rule '{keep}' unknown: use one of {', '.join(EXPERT_KEEP)}")
    rae, updated = rae_advantages(returns, roles, baselines, decay)
    score = outcomes if keep == "win" else rae
    return [1.0 if ok and s > 0 else 0.0 for ok, s in zip(valid, score)], updated


ESTIMATORS = ("rae", "grpo", "rloo", "expert")
EXPERT_KEEP = ("win", "advantage")
