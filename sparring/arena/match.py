"""Lockstep batched play: many matches at once, one batched call per agent per tick.

At each tick every unfinished match has exactly one pending decision (chance is
resolved inside the state). Decisions are grouped by the agent in that seat and each
agent is called once with all of its decisions, so a model backend sees a batch of
up to N prompts instead of N single prompts.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal

from sparring.agents.base import Agent, Decision
from sparring.errors import SparringError
from sparring.games.core import Game, GameSpec, State
from sparring.records import Choice, MatchResult, Turn


@dataclass(frozen=True)
class InvalidMoveRule:
    """What happens when an agent's answer is not a legal action."""

    retries: int = 1
    """Times the agent is asked again, with the reason as feedback."""
    then: Literal["forfeit", "random"] = "forfeit"
    """After the retries: forfeit the match, or play a uniformly random legal move."""
    penalty: float = -1.0
    """The offender's training reward when it forfeits (`MatchResult.returns`, which
    the trainer reads): a shaping of the training reward only. Results, ratings,
    benchmarks and the store score a forfeit by the game's own outcome
    (`forfeit_outcome`): a loss for the offender, a win for the others."""
    opponent_reward: float = 0.0
    """Every other player's training reward when someone forfeits (shaping, as `penalty`)."""

    def __post_init__(self):
        if self.retries < 0:
            raise SparringError(f"retries must be >= 0, got {self.retries}")
        if self.then not in ("forfeit", "random"):
            raise SparringError(f"on-invalid rule '{self.then}' unknown: use forfeit or random")
        for label, value in (("penalty", self.penalty), ("opponent reward", self.opponent_reward)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise SparringError(f"the forfeit {label} must be a finite number, got {value!r}: "
                                    "a return of nan or inf would poison every mean and rating")


def forfeit_outcome(spec: GameSpec, offender: int) -> tuple[float, ...]:
    """The game's own result of a forfeit: the offender gets the game's minimum return
    and loses; in a zero-sum game the others share its negation (so a two-player
    payoff matrix stays antisymmetric), otherwise each gets the game's maximum."""
    low, high = spec.utility_range
    others = -low / (spec.players - 1) if spec.zero_sum else high
    return tuple(float(low) if seat == offender else float(others) for seat in range(spec.players))


def derive_seed(*parts: object) -> int:
    """A 63-bit seed that depends only on `parts` (hashed by random's string seeding)."""
    return random.Random(":".join(map(str, parts))).getrandbits(63)


def match_seed(run_seed: int, index: int) -> int:
    """Each match's seed depends only on the run seed and the match index, so a
    continued run plays the same matches as an uninterrupted one."""
    return derive_seed("match", run_seed, index)


def seat_order(n_agents: int, index: int) -> list[int]:
    """Agent index per seat; seats rotate between matches so each agent plays
    every seat equally often."""
    return [(seat + index) % n_agents for seat in range(n_agents)]


@dataclass(frozen=True)
class PlannedMatch:
    """One match to play: its index in the run, game, agent per seat, and seed."""

    index: int
    game: Game
    seats: tuple[Agent, ...]
    seed: int


def rotating_plan(game: Game, agents: list[Agent], indices: Iterable[int], run_seed: int) -> list[PlannedMatch]:
    """`agents[i]` has seat i in match 0 and seats rotate with the index, so each
    agent plays every seat equally often; each match's seed is `match_seed`."""
    return [
        PlannedMatch(index, game, tuple(agents[i] for i in seat_order(len(agents), index)), match_seed(run_seed, index))
        for index in indices
    ]


class _Live:
    """A match in progress: its state and the turns so far."""

    def __init__(self, planned: PlannedMatch):
        self.planned = planned
        self.state: State = planned.game.new_initial_state(random.Random(planned.seed))
        self.turns: list[Turn] = []
        self.forfeit_returns: tuple[float, ...] | None = None
        self.forfeit_by: int | None = None
        self.void_reason: str | None = None  # a backend gave no answer: the match is void, not scored
        self.decision_index = 0
        self.attempt = 0
        self.rejected: list[tuple[str, str]] = []  # (answer, reason) of this decision's rejected attempts
        self.started = time.perf_counter()

    def agent(self) -> Agent:
        return self.planned.seats[self.state.current_player()]

    def next_decision(self) -> None:
        self.decision_index += 1
        self.attempt, self.rejected = 0, []

    def over(self) -> bool:
        return self.forfeit_by is not None or self.void_reason is not None or self.state.is_terminal()

    def decision(self) -> Decision:
        seed = derive_seed(self.planned.seed, self.decision_index, self.attempt)
        return Decision(
            state=self.state, player=self.state.current_player(), rng=random.Random(seed),
            seed=seed & 0x7FFFFFFF, rejected=tuple(self.rejected), attempt=self.attempt,
            match_seed=self.planned.seed,
        )

    def result(self) -> MatchResult:
        planned = self.planned
        forfeited = self.forfeit_by is not None
        returns = self.forfeit_returns if forfeited else tuple(self.state.returns())
        return MatchResult(
            index=planned.index, game=self.state.spec.versioned_ref, seed=planned.seed,
            seats=tuple(a.name for a in planned.seats), returns=returns, turns=tuple(self.turns),
            forfeit_by=self.forfeit_by, wall_s=time.perf_counter() - self.started,
            game_returns=forfeit_outcome(self.state.spec, self.forfeit_by) if forfeited else None,
        )


# Whoever shows progress listens here: every play_matches below it reports the matches
# it plans and each one that ends, so work that plays in many places (a benchmark's
# questions, a training step's games and its evaluations) moves one display
# without a callback passed down through every layer.
_watchers: ContextVar[tuple[Callable[[int, int], None], ...]] = ContextVar("match_watchers", default=())


@contextmanager
def watching_matches(watcher: Callable[[int, int], None]) -> Iterator[None]:
    """Call `watcher(planned, ended)` while this context lasts: `planned` matches when a
    `play_matches` starts, then `ended` = 1 as each finishes or is voided."""
    token = _watchers.set(_watchers.get() + (watcher,))
    try:
        yield
    finally:
        _watchers.reset(token)


def tell_watchers(planned: int, ended: int) -> None:
    for watcher in _watchers.get():
        watcher(planned, ended)


def play_matches(
    plan: Iterable[PlannedMatch],
    rule: InvalidMoveRule = InvalidMoveRule(),
    concurrency: int = 64,
    on_match_end: Callable[[MatchResult], None] | None = None,
    record_views: bool = True,
    on_match_void: Callable[[int, str], None] | None = None,
) -> list[MatchResult]:
    """Play the planned matches, `concurrency` at a time, and return them in index
    order. Finished matches are handed to `on_match_end` as they end (the store
    writes each in one transaction).

    A backend that gives no answer after its retries (`Choice.backend_error`: not a
    move) voids the match: left out of the results, so never scored or stored, and
    its index and the reason go to `on_match_void`.

    A tick first lets agents that gain nothing from batching (scripted agents,
    solvers) move until every match waits on a batching agent (`wants_batches`),
    replacing the matches they end, then calls each batching agent once with all
    of its decisions: a model playing a reference agent sees `concurrency`
    matches in one batch while matches wait to start. A plan may mix games and
    pairings (a tournament, a benchmark of many questions): an agent's decisions
    from all of them reach it in one call.
    """
    if concurrency < 1:
        raise SparringError(f"concurrency must be >= 1, got {concurrency}")
    waiting = _checked(plan)[::-1]
    live: list[_Live] = []
    finished: list[MatchResult] = []
    tell_watchers(len(waiting), 0)

    def retire() -> None:
        """Hand on the finished matches and start waiting ones until `concurrency` are live."""
        nonlocal live
        ended = [m for m in live if m.over()]
        live = [m for m in live if not m.over()]
        while waiting and len(live) < concurrency:
            match = _Live(waiting.pop())
            (ended if match.over() else live).append(match)
        for match in ended:
            tell_watchers(0, 1)
            if match.void_reason is not None:
                if on_match_void is not None:
                    on_match_void(match.planned.index, match.void_reason)
                continue
            result = match.result()
            finished.append(result)
            if on_match_end is not None:
                on_match_end(result)

    retire()
    while live:
        while quick := [m for m in live if not getattr(m.agent(), "wants_batches", False)]:
            _step(quick, rule, record_views)
            retire()  # a match that a quick move ended makes room before the batched calls
        _step(live, rule, record_views)
        retire()
    return sorted(finished, key=lambda r: r.index)


def _checked(plan: Iterable[PlannedMatch]) -> list[PlannedMatch]:
    plan = list(plan)
    for planned in plan:
        if len(planned.seats) != (players := planned.game.spec.players):
            raise SparringError(f"{planned.game.spec.name} needs {players} players, got {len(planned.seats)}: "
                                f"give exactly {players} agents")
    return plan


def void_note(voided: dict[int, str], total: int) -> str | None:
    """What to say of the matches of `total` that a backend failure voided
    (`on_match_void`'s index -> reason), or None when none were; most of them void
    is a failed run, raised: it would measure the server, not the agents."""
    if not voided:
        return None
    first = voided[min(voided)]
    if 2 * len(voided) > total:
        raise SparringError(f"{len(voided)} of {total} matches failed in the backend, not in play ({first}): "
                            "check the server and its limits, then run the same command again")
    return (f"{len(voided)} of {total} matches void: a backend gave no answer after its retries (first: {first}); "
            "they are not scored or stored")


def _step(matches: list[_Live], rule: InvalidMoveRule, record_views: bool) -> None:
    """One call per agent for all of its pending decisions among `matches`."""
    groups: dict[int, tuple[Agent, list[_Live]]] = {}
    for match in matches:
        agent = match.agent()
        groups.setdefault(id(agent), (agent, []))[1].append(match)
    for agent, group in groups.values():
        decisions = [m.decision() for m in group]
        choices = agent.act(decisions)
        if len(choices) != len(decisions):
            raise RuntimeError(f"agent {agent.name} returned {len(choices)} choices for {len(decisions)} decisions")
        for match, decision, choice in zip(group, decisions, choices):
            _resolve(match, decision, choice, agent.name, rule, record_views)


def _resolve(match: _Live, decision: Decision, choice: Choice, agent_name: str,
             rule: InvalidMoveRule, record_views: bool) -> None:
    """Apply a choice, or handle it as an invalid move by the configured rule; a
    backend's failure voids the match."""
    if choice.backend_error is not None:
        match.void_reason = f"{agent_name}: {choice.backend_error}"
        return
    state, seat = match.state, decision.player
    legal = state.legal_actions()
    valid = choice.action is not None and choice.action in legal
    reason = choice.reason
    if choice.action is not None and not valid:
        reason = reason or f"action {choice.action} is not legal here"
    turn = Turn(
        decision=match.decision_index, attempt=match.attempt, seat=seat, agent=agent_name,
        view=state.view(seat) if record_views else "", choice=choice, valid=valid,
        action_name=state.action_name(choice.action) if valid else None,
        reason=None if valid else (reason or "no action"),
    )
    match.turns.append(turn)
    if valid:
        state.apply(choice.action, choice.message if state.spec.messages else None)
        match.next_decision()
        return
    if match.attempt < rule.retries:
        match.attempt += 1
        match.rejected.append((choice.completion or "", turn.reason))
        return
    if rule.then == "random":
        action = decision.rng.choice(legal)
        match.turns.append(Turn(
            decision=match.decision_index, attempt=match.attempt + 1, seat=seat, agent=agent_name,
            view="", choice=Choice(action=action), valid=True, action_name=state.action_name(action),
            forced=True, reason="random legal move after invalid answers",
        ))
        state.apply(action)
        match.next_decision()
        return
    match.forfeit_by = seat
    match.forfeit_returns = tuple(
        rule.penalty if other == seat else rule.opponent_reward for other in range(state.spec.players)
    )
