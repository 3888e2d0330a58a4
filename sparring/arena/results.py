"""Summaries of stored matches: per agent win/draw/loss, mean return with a 95%
confidence interval, and invalid moves counted apart from strategic losses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its normal-approximation 95% interval."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, math.inf
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, 1.96 * math.sqrt(variance / n)


@dataclass
class AgentSummary:
    agent: str
    games: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0
    returns: list[float] = field(default_factory=list)
    invalid: int = 0  # rejected answers, retried or not
    forfeits: int = 0  # matches lost by running out of retries

    @property
    def mean_return(self) -> tuple[float, float]:
        return mean_ci95(self.returns)


def outcome(returns: list[float], seat: int) -> str:
    """'win' if the seat's return is the unique best, 'draw' if tied best, else 'loss'."""
    best = max(returns)
    if returns[seat] < best:
        return "loss"
    return "win" if returns.count(best) == 1 else "draw"


def outcome_score(returns: list[float], seat: int) -> float:
    """The seat's result as a score: 1 for a win, 1/2 for a draw, 0 for a loss."""
    return {"win": 1.0, "draw": 0.5, "loss": 0.0}[outcome(returns, seat)]


def summarize(matches: list[dict[str, Any]]) -> list[AgentSummary]:
    """One summary per agent name, in order of first appearance. A match where both
    seats are the same agent counts once per seat."""
    summaries: dict[str, AgentSummary] = {}
    for match in matches:
        for seat, agent in enumerate(match["seats"]):
            s = summaries.setdefault(agent, AgentSummary(agent))
            s.games += 1
            result = outcome(match["returns"], seat)
            s.wins += result == "win"
            s.draws += result == "draw"
            s.losses += result == "loss"
            s.returns.append(match["returns"][seat])
            s.invalid += match["invalid"][seat]
            s.forfeits += match["forfeit_by"] == seat
    return list(summaries.values())
