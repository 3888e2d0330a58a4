"""Summaries of finished matches: per agent win/draw/loss, mean return with a 95%
confidence interval, invalid moves counted apart from strategic losses, and the
payoff matrix between agents. They read `MatchRecord`s, from memory or a store.
Matches with their turns export as JSON lines or Parquet."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sparring.errors import SparringError
from sparring.records import MatchRecord, MatchResult, PayoffMatrix, Turn


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


# ---- exports ------------------------------------------------------------------------


def export_jsonl(results: Iterable[MatchResult], path: str | Path) -> int:
    """One JSON object per match, with its turns; returns the number written."""
    n = 0
    with open(path, "w") as f:
        for result in results:
            record = asdict(result.record)
            record["turns"] = [_turn_json(t) for t in result.turns]
            f.write(json.dumps(record) + "\n")
            n += 1
    return n


def export_parquet(results: Iterable[MatchResult], path: str | Path) -> int:
    """One row per turn, with its match's fields; returns the number of rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = []
    for result in results:
        for seq, turn in enumerate(result.turns):
            row = _turn_json(turn)
            for key in ("action_logprobs", "option_token_ids", "sampling"):
                row[key] = json.dumps(row[key]) if row[key] else None
            rows.append({
                "match_idx": result.index, "seq": seq, **row, "game": result.game, "match_seed": result.seed,
                "seats": list(result.seats), "returns": list(result.returns), "forfeit_by": result.forfeit_by,
            })
    pq.write_table(pa.Table.from_pylist(rows), path)
    return len(rows)


def _turn_json(t: Turn) -> dict[str, Any]:
    """A turn as one flat JSON object (exports)."""
    c = t.choice
    return {
        "decision": t.decision, "attempt": t.attempt, "seat": t.seat, "agent": t.agent, "view": t.view,
        "prompt": c.prompt, "completion": c.completion, "prompt_token_ids": list(c.prompt_token_ids),
        "token_ids": list(c.token_ids), "logprobs": list(c.logprobs),
        "action_logprobs": {str(k): v for k, v in c.action_logprobs.items()} if c.action_logprobs else None,
        "option_token_ids": {str(k): list(v) for k, v in c.option_token_ids.items()} if c.option_token_ids else None,
        "sampling": asdict(c.sampling) if c.sampling else None, "policy_version": c.policy_version,
        "action": t.action, "action_name": t.action_name, "valid": t.valid, "forced": t.forced,
        "reason": t.reason, "message": c.message, "batch_s": c.batch_s,
        "batch_size": c.batch_size,
    }


def pairing_returns(matches: list[MatchRecord], names: list[str]) -> list[tuple[int, int, np.ndarray]]:
    """Each pairing's matches as (i, j, returns): returns[m] = (agent i's return, agent
    j's return) in its m-th match; an agent playing itself (i == j) scores the mean of
    its seats, as `payoff_matrix` pools both. Matches of agents outside `names` are
    left out, as there."""
    position = {name: k for k, name in enumerate(names)}
    groups: dict[frozenset, list[MatchRecord]] = {}
    for match in matches:
        if all(seat in position for seat in match.seats):
            groups.setdefault(frozenset(match.seats), []).append(match)
    pairings = []
    for group in groups.values():
        i, j = sorted(position[seat] for seat in group[0].seats)
        returns = np.array([
            (sum(m.returns) / 2,) * 2 if i == j else
            (m.returns[0], m.returns[1]) if position[m.seats[0]] == i else (m.returns[1], m.returns[0])
            for m in group])
        pairings.append((i, j, returns))
    return pairings


def resampled_payoff(pairings: list[tuple[int, int, np.ndarray]], n: int, picks: list[np.ndarray]) -> np.ndarray:
    """The mean payoff matrix of one bootstrap sample: pairing k's matches `picks[k]`
    (what `payoff_matrix(...).mean` gives for those matches, without rebuilding it)."""
    mean = np.full((n, n), np.nan)
    for (i, j, returns), pick in zip(pairings, picks):
        mean[i, j], mean[j, i] = returns[pick].mean(axis=0)
    return mean
