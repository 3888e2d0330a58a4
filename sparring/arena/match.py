"""Lockstep batched play: many matches at once, one batched call per agent per tick.

At each tick every unfinished match has exactly one pending decision (chance is
resolved inside the state). Decisions are grouped by the agent in that seat and each
agent is called once with all of its decisions, so a model backend sees a batch of
up to N prompts instead of N single prompts.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from sparring.agents.base import Agent, Choice, Decision
from sparring.errors import SparringError
from sparring.games.core import Game, State


@dataclass(frozen=True)
class InvalidMoveRule:
    """What happens when an agent's answer is not a legal action."""

    retries: int = 1
    """Times the agent is asked again, with the reason as feedback."""
    then: Literal["forfeit", "random"] = "forfeit"
    """After the retries: forfeit the match, or play a uniformly random legal move."""
    penalty: float = -1.0
    """The offender's return when it forfeits."""
    opponent_reward: float = 0.0
    """Every other player's return when someone forfeits."""

    def __post_init__(self):
        if self.retries < 0:
            raise SparringError(f"retries must be >= 0, got {self.retries}")
        if self.then not in ("forfeit", "random"):
            raise SparringError(f"on-invalid rule '{self.then}' unknown: use forfeit or random")


@dataclass
class Turn:
    """One attempt at one decision, valid or not."""

    index: int  # decision number within the match (retries share it)
    attempt: int
    player: int
    agent: str
    view: str
    action: int | None  # what was played; None if this attempt was rejected
    action_name: str | None
    valid: bool
    reason: str | None = None
    forced: bool = False  # a random legal move played after the retries ran out
    message: str | None = None
    prompt: str | None = None
    completion: str | None = None
    prompt_token_ids: list[int] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    action_logprobs: dict[int, float] | None = None
    latency_s: float = 0.0


@dataclass
class MatchResult:
    index: int
    game: str  # game reference, with version
    seed: int
    seats: list[str]  # agent name per seat
    returns: list[float] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    forfeit_by: int | None = None
    wall_s: float = 0.0

    def invalid_counts(self) -> list[int]:
        counts = [0] * len(self.seats)
        for turn in self.turns:
            if not turn.valid:
                counts[turn.player] += 1
        return counts


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


class _Live:
    """A match in progress."""

    def __init__(self, game: Game, seat_agents: list[Agent], index: int, run_seed: int):
        self.seed = match_seed(run_seed, index)
        self.state: State = game.new_initial_state(random.Random(self.seed))
        self.seat_agents = seat_agents
        spec = self.state.spec
        self.result = MatchResult(
            index=index, game=spec.versioned_ref, seed=self.seed,
            seats=[a.name for a in seat_agents],
        )
        self.decision_index = 0
        self.attempt = 0
        self.rejected: list[tuple[str, str]] = []  # (answer, reason) of this decision's rejected attempts
        self.started = time.perf_counter()

    def agent(self) -> Agent:
        return self.seat_agents[self.state.current_player()]

    def next_decision(self) -> None:
        self.decision_index += 1
        self.attempt, self.rejected = 0, []

    def over(self) -> bool:
        return self.result.forfeit_by is not None or self.state.is_terminal()

    def decision(self) -> Decision:
        seed = derive_seed(self.seed, self.decision_index, self.attempt)
        return Decision(
            state=self.state, player=self.state.current_player(), rng=random.Random(seed),
            seed=seed & 0x7FFFFFFF, rejected=tuple(self.rejected), attempt=self.attempt,
        )


def rotating_seats(agents: list[Agent]) -> Callable[[int], list[Agent]]:
    """Seat assignment where `agents[i]` has seat i in match 0 and seats rotate."""
    return lambda index: [agents[i] for i in seat_order(len(agents), index)]


def play_matches(
    game: Game | Callable[[int], Game],
    agents: list[Agent] | Callable[[int], list[Agent]],
    indices: Iterable[int],
    run_seed: int,
    rule: InvalidMoveRule = InvalidMoveRule(),
    concurrency: int = 64,
    on_match_end: Callable[[MatchResult], None] | None = None,
    record_views: bool = True,
) -> list[MatchResult]:
    """Play the matches with the given indices, `concurrency` at a time.

    `agents` is either one agent per seat of match 0 (seats rotate with the
    index) or a function from match index to the agents of its seats (a
    tournament plays all its pairings in one call this way). `game` may likewise
    be a function from match index to game (a benchmark asks one agent hundreds
    of different questions in one batched call).
    Finished matches are handed to `on_match_end` as they end (the store writes
    each in one transaction) and returned in index order.

    A tick first lets agents that gain nothing from batching (scripted agents,
    solvers) move until every match waits on a batching agent (`wants_batches`),
    replacing the matches they end, then calls each batching agent once with all
    of its decisions: a model playing a reference agent sees `concurrency`
    matches in one batch while matches wait to start.
    """
    game_of = (lambda index: game) if hasattr(game, "new_initial_state") else game
    seating = rotating_seats(agents) if isinstance(agents, list) else agents
    if concurrency < 1:
        raise SparringError(f"concurrency must be >= 1, got {concurrency}")
    waiting = list(indices)[::-1]
    live: list[_Live] = []
    finished: list[MatchResult] = []

    def finish(match: _Live) -> None:
        result = match.result
        if result.forfeit_by is None:
            result.returns = list(match.state.returns())
        result.wall_s = time.perf_counter() - match.started
        finished.append(result)
        if on_match_end is not None:
            on_match_end(result)

    def retire(matches: list[_Live]) -> list[_Live]:
        """Hand on the finished matches; return the others."""
        still = []
        for match in matches:
            (finish if match.over() else still.append)(match)
        return still

    def step(matches: list[_Live]) -> None:
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

    def fill() -> None:
        """Start waiting matches until `concurrency` are live."""
        while waiting and len(live) < concurrency:
            index = waiting.pop()
            match_game, seat_agents = game_of(index), seating(index)
            players = match_game.spec.players
            if len(seat_agents) != players:
                raise SparringError(
                    f"{match_game.spec.name} needs {players} players, got {len(seat_agents)}: "
                    f"give exactly {players} agents"
                )
            match = _Live(match_game, seat_agents, index, run_seed)
            (finish if match.state.is_terminal() else live.append)(match)

    while waiting or live:
        fill()
        while quick := [m for m in live if not getattr(m.agent(), "wants_batches", False)]:
            step(quick)
            live = retire(live)
            fill()  # a match that a quick move ended makes room before the batched calls
        step(live)
        live = retire(live)
    return sorted(finished, key=lambda r: r.index)


def _resolve(match: _Live, decision: Decision, choice: Choice, agent_name: str,
             rule: InvalidMoveRule, record_views: bool) -> None:
    """Apply a choice, or handle it as an invalid move by the configured rule."""
    state, player = match.state, decision.player
    legal = state.legal_actions()
    valid = choice.action is not None and choice.action in legal
    reason = choice.reason
    if choice.action is not None and not valid:
        reason = reason or f"action {choice.action} is not legal here"
    turn = Turn(
        index=match.decision_index, attempt=match.attempt, player=player, agent=agent_name,
        view=state.view(player) if record_views else "",
        action=choice.action if valid else None,
        action_name=state.action_name(choice.action) if valid else None,
        valid=valid, reason=None if valid else (reason or "no action"),
        message=choice.message, prompt=choice.prompt, completion=choice.completion,
        prompt_token_ids=choice.prompt_token_ids, token_ids=choice.token_ids, logprobs=choice.logprobs,
        action_logprobs=choice.action_logprobs, latency_s=choice.latency_s,
    )
    match.result.turns.append(turn)
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
        match.result.turns.append(Turn(
            index=match.decision_index, attempt=match.attempt + 1, player=player,
            agent=agent_name, view="", action=action, action_name=state.action_name(action),
            valid=True, forced=True, reason="random legal move after invalid answers",
        ))
        state.apply(action)
        match.next_decision()
        return
    match.result.forfeit_by = player
    match.result.returns = [
        rule.penalty if seat == player else rule.opponent_reward
        for seat in range(state.spec.players)
    ]
