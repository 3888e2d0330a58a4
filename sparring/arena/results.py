"""Summaries of finished matches: per agent win/draw/loss, mean return with a 95%
confidence interval, invalid moves counted apart from strategic losses, and the
payoff matrix between agents. They read `MatchRecord`s, from memory or a store."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sparring.errors import SparringError
from sparring.records import MatchRecord, PayoffMatrix


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
    seat: int | None = None  # the seat summarised, when seats are kept apart (`summarize(by_seat=True)`)
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


def outcome(returns: tuple[float, ...], seat: int) -> str:
    """'win' if the seat's return is the unique best, 'draw' if tied best, else 'loss'."""
    best = max(returns)
    if returns[seat] < best:
        return "loss"
    return "win" if returns.count(best) == 1 else "draw"


def outcome_score(returns: tuple[float, ...], seat: int) -> float:
    """The seat's result as a score: 1 for a win, 1/2 for a draw, 0 for a loss."""
    return {"win": 1.0, "draw": 0.5, "loss": 0.0}[outcome(returns, seat)]


def self_play(matches: list[MatchRecord]) -> bool:
    """Whether some agent holds more than one seat of a match."""
    return any(len(set(match.seats)) < len(match.seats) for match in matches)


def summarize(matches: list[MatchRecord], by_seat: bool = False) -> list[AgentSummary]:
    """One summary per agent name, in order of first appearance; with `by_seat`, one
    per (agent, seat), sorted so. Pooled, a match where both seats are the same agent
    counts once per seat, and in a zero-sum game the seats' returns cancel: keep the
    seats apart (`by_seat`) to see a self-play match's first-mover edge."""
    summaries: dict[tuple[str, int | None], AgentSummary] = {}
    for match in matches:
        for seat, agent in enumerate(match.seats):
            key = (agent, seat if by_seat else None)
            s = summaries.setdefault(key, AgentSummary(agent, key[1]))
            s.games += 1
            result = outcome(match.returns, seat)
            s.wins += result == "win"
            s.draws += result == "draw"
            s.losses += result == "loss"
            s.returns.append(match.returns[seat])
            s.invalid += match.invalid[seat]
            s.forfeits += match.forfeit_by == seat
    if by_seat:
        first = {agent: k for k, (agent, _) in reversed(list(enumerate(summaries)))}
        return [summaries[key] for key in sorted(summaries, key=lambda key: (first[key[0]], key[1]))]
    return list(summaries.values())


def agent_names(matches: list[MatchRecord], agents: list[str] | None = None) -> list[str]:
    """`agents` if given, else every agent in the matches in order of first appearance."""
    if agents is not None:
        return list(agents)
    names: list[str] = []
    for match in matches:
        names += [a for a in match.seats if a not in names]
    return names


def payoff_matrix(matches: list[MatchRecord], agents: list[str] | None = None) -> PayoffMatrix:
    """Build the payoff matrix from two-seat matches.

    `agents` fixes the rows' order (default: order of first appearance); matches
    involving an agent not in it are left out, so a subset of a field can be rated.
    """
    agents = agent_names(matches, agents)
    position = {name: k for k, name in enumerate(agents)}
    seen = {a for match in matches for a in match.seats}
    missing = [a for a in agents if a not in seen]
    if missing:
        raise SparringError(
            f"no stored matches for {', '.join(missing)}; agents in these matches are "
            f"{', '.join(sorted(seen)) or 'none'}"
        )
    n = len(agents)
    returns: list[list[list[float]]] = [[[] for _ in range(n)] for _ in range(n)]
    counts = {key: np.zeros((n, n), dtype=int) for key in ("win", "draw", "loss", "invalid", "forfeits")}
    for match in matches:
        if len(match.seats) != 2:
            raise SparringError(
                f"match {match.index} has {len(match.seats)} seats: a payoff matrix pairs agents "
                "two at a time, so it needs two-player matches"
            )
        if match.seats[0] not in position or match.seats[1] not in position:
            continue
        for seat in (0, 1):
            i, j = position[match.seats[seat]], position[match.seats[1 - seat]]
            returns[i][j].append(match.returns[seat])
            counts[outcome(match.returns, seat)][i, j] += 1
            counts["invalid"][i, j] += match.invalid[seat]
            counts["forfeits"][i, j] += match.forfeit_by == seat
    mean = np.full((n, n), np.nan)
    ci95 = np.full((n, n), np.nan)
    games = np.zeros((n, n), dtype=int)
    for i in range(n):
        for j in range(n):
            if returns[i][j]:
                mean[i, j], ci95[i, j] = mean_ci95(returns[i][j])
                games[i, j] = len(returns[i][j])
    return PayoffMatrix(
        agents=tuple(agents), mean=mean, ci95=ci95, games=games, wins=counts["win"],
        draws=counts["draw"], losses=counts["loss"], invalid=counts["invalid"],
        forfeits=counts["forfeits"],
    )
