"""A match as the steps of its replay: one step per stored attempt (rejected answers
and random moves after them included), then the result.

Each step says who answered, what they saw, the prompt and the model's text in
full, what was rejected and why, what the agent was told before a retry, the move
played, and its probability where the agent knew its distribution. The match is
also replayed through the game's rules from its seed, which names every legal
action of a distribution, draws the board after each step (`boards`) and gives
each player's final view; a match the rules cannot replay (a game removed, other
rules) shows without them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sparring.agents.llm import rejection_kind, retry_feedback
from sparring.dashboard.boards import Board, draw
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.records import MatchRecord, Turn


@dataclass(frozen=True)
class Option:
    """One legal action of a turn's distribution."""

    name: str
    probability: float
    chosen: bool


@dataclass(frozen=True)
class ReplayStep:
    number: int  # 1-based, the step's place in the replay (and in its URL: #turn-N)
    turn: Turn
    outcome: str  # "plays 5", "rejected: ...", "random move after invalid answers: 5"
    feedback: str | None  # what the agent was told before this retry
    probability: float | None  # of the played action, where the agent knew its distribution
    options: tuple[Option, ...]  # the whole distribution over legal actions, where known
    board: Board | None  # the game drawn after this step; None where the rules could not replay it
    rejected: str | None  # a rejected answer's kind: "illegal" or "unparsable" (agents.llm.rejection_kind)
    signal: tuple[int, float, float] | None  # in a training run: (step, reward, advantage) it was taught with


@dataclass(frozen=True)
class Replay:
    match: MatchRecord
    steps: tuple[ReplayStep, ...]
    final_views: tuple[str, ...]  # each player's view at the end, from the rules; () if they could not replay it
    final_board: Board | None
    note: str | None  # why the rules could not replay it


@dataclass(frozen=True)
class RulesReplay:
    """A stored match played again through its game's rules; all empty, with a
    note saying why, where they could not replay it."""

    names: tuple[dict[int, str], ...]  # per step: each legal action's name, by id
    boards: tuple[Board | None, ...]  # per step: the board after it
    final_board: Board | None
    final_views: tuple[str, ...]  # each player's view at the end
    note: str | None = None


def build_replay(match: MatchRecord, turns: list[Turn],
                 signals: dict[int, tuple[int, float, float]] | None = None) -> Replay:
    """`signals`: what training taught each turn, by its place in the match
    (`RunStore.turn_signals`)."""
    rules = replay_with_rules(match, turns)
    steps = []
    for i, turn in enumerate(turns):
        previous = turns[i - 1] if i else None
        feedback = None
        if turn.attempt and not turn.forced and previous is not None and not previous.valid:
            feedback = retry_feedback(previous.reason or "no action")
        probability, options = distribution(turn, rules.names[i] if rules.names else None)
        steps.append(ReplayStep(number=i + 1, turn=turn, outcome=outcome(turn), feedback=feedback,
                                probability=probability, options=options,
                                board=rules.boards[i] if rules.boards else None,
                                rejected=None if turn.valid else rejection_kind(turn.choice.completion, turn.choice.action),
                                signal=(signals or {}).get(i)))
    return Replay(match, tuple(steps), rules.final_views, rules.final_board, rules.note)


def outcome(turn: Turn) -> str:
    if turn.forced:
        return f"random move after invalid answers: {turn.action_name}"
    if turn.valid:
        return f"plays {turn.action_name}"
    return f"rejected: {turn.reason or 'no action'}"


def distribution(turn: Turn, names: dict[int, str] | None) -> tuple[float | None, tuple[Option, ...]]:
    """The played action's probability and every legal action's, from the turn's
    `action_logprobs` (log pi(a) per legal a), named by the rules where they replayed."""
    logprobs = turn.choice.action_logprobs
    if not logprobs:
        return None, ()
    played = turn.action
    options = tuple(
        Option(name=(names or {}).get(a) or (turn.action_name if a == played and turn.action_name else f"action {a}"),
               probability=math.exp(lp), chosen=a == played)
        for a, lp in sorted(logprobs.items()))
    probability = math.exp(logprobs[played]) if played in logprobs and not turn.forced else None
    return probability, options


def replay_with_rules(match: MatchRecord, turns: list[Turn]) -> RulesReplay:
    """Play the match again through its game's rules, from its seed, as the arena did
    (`arena.match`: the state is made with `random.Random(seed)`, each valid answer
    applied with its message): the legal actions' names at each step, the board
    after it, and every player's final view."""
    try:
        state = make_game(match.game).new_initial_state(random.Random(match.seed))
        names: list[dict[int, str]] = []
        boards: list[Board | None] = []
        for turn in turns:
            if state.is_terminal():
                return _not_replayed("the stored turns go on after the rules end the game")
            names.append({a: state.action_name(a) for a in state.legal_actions()})
            if turn.valid:
                if turn.action not in names[-1]:
                    return _not_replayed(f"the stored move {turn.action_name} is not legal under the rules now")
                state.apply(turn.action, turn.choice.message if state.spec.messages else None)
            boards.append(draw(state, moved=turn.valid))
        views = tuple(state.view(p) for p in range(state.spec.players))
        return RulesReplay(tuple(names), tuple(boards), draw(state, moved=False), views)
    # A replay only adds names, boards and final views, so any failure of the rules
    # (pyspiel raises its own RuntimeError) leaves the stored match to show as it is.
    except (SparringError, RuntimeError, ValueError, KeyError, IndexError) as exc:
        return _not_replayed(f"the rules of {match.game} could not replay this match ({exc})")


def _not_replayed(why: str) -> RulesReplay:
    return RulesReplay(names=(), boards=(), final_board=None, final_views=(), note=why)
