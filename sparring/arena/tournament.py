"""Tournaments: every pairing of a field of agents (round robin), or one agent
against each of a field (gauntlet), N matches per pairing with seats swapped evenly,
summarised as a payoff matrix of mean returns with 95% intervals.

A tournament is a normal run: each match is stored with the agent name per seat, so
`payoff_matrix(store.matches())` (arena.results) rebuilds the results from any run directory, and a
tournament stored in a run directory is continued, like `play`, by running it again.

Match indices are allotted in blocks, one block of `games_per_pair` per pairing:
pairing k owns indices k*G .. k*G+G-1, and seats swap with the parity of the index,
so with an even G each agent of a pairing sits in each seat exactly G/2 times.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from sparring.agents.base import Agent
from sparring.arena.match import (
    InvalidMoveRule,
    PlannedMatch,
    match_seed,
    play_matches,
    seat_order,
)
from sparring.arena.results import payoff_matrix
from sparring.errors import SparringError
from sparring.games.core import Game
from sparring.records import MatchRecord, MatchResult, PayoffMatrix
from sparring.store import RunStore

Mode = Literal["round_robin", "gauntlet"]
MODES = ("round_robin", "gauntlet")


def pairings(n_agents: int, mode: Mode) -> list[tuple[int, int]]:
    """Agent index pairs in play order. Round robin: every i < j. Gauntlet: agent 0
    (the challenger) against each of the others."""
    if mode == "round_robin":
        return [(i, j) for i in range(n_agents) for j in range(i + 1, n_agents)]
    if mode == "gauntlet":
        return [(0, j) for j in range(1, n_agents)]
    raise SparringError(f"tournament mode '{mode}' unknown: use {' or '.join(MODES)}")


def planned_matches(plan: dict[str, Any]) -> int:
    """How many matches a stored tournament plan (meta "tournament") has in all."""
    return len(pairings(len(plan["agents"]), plan["mode"])) * plan["games_per_pair"]


def check_tournament(players: int, names: list[str], games_per_pair: int, mode: str) -> None:
    """Refuse a tournament that cannot be played fairly, saying what to change."""
    if mode not in MODES:
        raise SparringError(f"tournament mode '{mode}' unknown: use {' or '.join(MODES)}")
    if players != 2:
        raise SparringError(
            f"tournaments pair agents two at a time, and this game has {players} seats: "
            "play it with `play` and one agent per seat instead"
        )
    if len(names) < 2:
        raise SparringError(f"a tournament needs at least 2 agents, got {len(names)}: add opponents")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SparringError(
            f"agent names must be distinct, since results are kept by name: {', '.join(duplicates)} "
            "appear more than once. Give each agent once"
        )
    if not isinstance(games_per_pair, int) or games_per_pair <= 0:
        raise SparringError(f"games per pairing must be a positive whole number, got {games_per_pair}")
    if games_per_pair % 2:
        raise SparringError(
            f"games per pairing must be even so that each agent plays each seat equally often "
            f"(seats cannot be swapped evenly over {games_per_pair} games): use {games_per_pair + 1}"
        )


@dataclass
class TournamentResult:
    agents: list[str]
    mode: str
    games_per_pair: int
    pairings: list[tuple[str, str]]
    matches: list[MatchRecord]  # in index order
    voided: dict[int, str] = field(default_factory=dict)  # match index -> why a backend failure voided it

    def payoff(self) -> PayoffMatrix:
        return payoff_matrix(self.matches, self.agents)


def run_tournament(
    game: Game,
    agents: list[Agent],
    games_per_pair: int,
    seed: int = 0,
    rule: InvalidMoveRule = InvalidMoveRule(),
    mode: Mode = "round_robin",
    store: RunStore | None = None,
    progress: Callable[[int, int], None] | None = None,
    concurrency: int = 64,
    play: Callable[..., list[MatchResult]] = play_matches,
) -> TournamentResult:
    """Play every pairing's matches and return them with the field's names.

    With a `store`, each match is written as it ends and matches already stored are
    not played again (the store keeps the plan and refuses a different one).
    `progress(finished, total)` is called once before play and after every match.
    `play` plays them: `play_matches` here, or `arena.workers.Workers.play`.
    """
    names = [agent.name for agent in agents]
    check_tournament(game.spec.players, names, games_per_pair, mode)
    pairs = pairings(len(agents), mode)
    total = len(pairs) * games_per_pair
    done = _continue_in(store, {"game": game.spec.versioned_ref, "agents": names, "mode": mode,
                                "games_per_pair": games_per_pair, "seed": seed,
                                "rule": dataclasses.asdict(rule)}, total)
    finished = len(done)
    if progress is not None:
        progress(finished, total)

    def on_match_end(result: MatchResult) -> None:
        nonlocal finished
        if store is not None:
            store.write_match(result)
        finished += 1
        if progress is not None:
            progress(finished, total)

    # One arena call for every pairing: an agent's decisions from all of its
    # pairings reach it in one batch per tick.
    todo = []
    for index in range(total):
        if index not in done:
            pair = [agents[k] for k in pairs[index // games_per_pair]]
            todo.append(PlannedMatch(index, game, tuple(pair[k] for k in seat_order(2, index)), match_seed(seed, index)))
    voided: dict[int, str] = {}
    played = play(todo, rule, concurrency, on_match_end, on_match_void=voided.__setitem__)

    if store is not None:
        records = [m for m in store.matches() if m.index < total]
    else:
        records = [r.record for r in played]  # in index order
    return TournamentResult(
        agents=names, mode=mode, games_per_pair=games_per_pair,
        pairings=[(names[i], names[j]) for i, j in pairs], matches=records, voided=voided,
    )


def _continue_in(store: RunStore | None, plan: dict[str, Any], total: int) -> set[int]:
    """The indices of the matches a store already holds of this tournament (none
    without a store); the store keeps the plan and refuses a different one."""
    if store is None:
        return set()
    stored_plan = store.get_meta("tournament")
    if stored_plan is None:
        if store.finished_indices():
            raise SparringError(
                f"{store.dir} already holds matches that are not from a tournament: "
                "choose a new run directory for the tournament"
            )
        store.set_meta("tournament", plan)
    elif stored_plan != plan:
        differ = sorted(k for k in plan if stored_plan.get(k) != plan[k])
        raise SparringError(
            f"{store.dir} holds a tournament with a different plan ({', '.join(differ)} differ): "
            "choose a new run directory, or repeat the original settings to continue it"
        )
    return store.finished_indices() & set(range(total))
