"""A match as the steps of its replay: one step per stored attempt (rejected answers
and random moves after them included), then the result.

Each step says who answered, what they saw, the prompt and the model's text in
full, what was rejected and why, what the agent was told before a retry, the move
played, and its probability where the agent knew its distribution. The match is
also replayed through the game's rules from its seed, which names every legal
action of a distribution and gives each player's final view; a match the rules
cannot replay (a game removed, other rules) shows without them.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from sparring.agents.llm import retry_feedback
from sparring.errors import SparringError
from sparring.games.registry import make_game, split_version
from sparring.records import MatchRecord, Turn

TICTACTOE_MARKS = ("X", "O")  # OpenSpiel's tic_tac_toe: player 0 plays x


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
    board: tuple[str, ...] | None  # tic-tac-toe cells after this step ("" = empty)
    marked: int | None  # the cell this step marked


@dataclass(frozen=True)
class Replay:
    match: MatchRecord
    steps: tuple[ReplayStep, ...]
    final_views: tuple[str, ...]  # each player's view at the end, from the rules; () if they could not replay it
    final_board: tuple[str, ...] | None
    note: str | None  # why the rules could not replay it


def build_replay(match: MatchRecord, turns: list[Turn]) -> Replay:
    names, final_views, note = replay_with_rules(match, turns)
    boards = tictactoe_boards(turns) if split_version(match.game)[0] == "tictactoe" else None
    steps = []
    for i, turn in enumerate(turns):
        previous = turns[i - 1] if i else None
        feedback = None
        if turn.attempt and not turn.forced and previous is not None and not previous.valid:
            feedback = retry_feedback(previous.reason or "no action")
        probability, options = distribution(turn, names[i] if names else None)
        board, marked = boards[i] if boards else (None, None)
        steps.append(ReplayStep(number=i + 1, turn=turn, outcome=outcome(turn), feedback=feedback,
                                probability=probability, options=options, board=board, marked=marked))
    final_board = boards[-1][0] if boards else None
    return Replay(match, tuple(steps), final_views, final_board, note)


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


def tictactoe_boards(turns: list[Turn]) -> list[tuple[tuple[str, ...], int | None]]:
    """The board after each step (cells 0-8, row by row, "" empty) and the cell it
    marked: each valid action marks cell `action` with its seat's mark."""
    cells = [""] * 9
    boards = []
    for turn in turns:
        marked = None
        if turn.valid and turn.action is not None and 0 <= turn.action < 9 and 0 <= turn.seat < 2:
            cells[turn.action] = TICTACTOE_MARKS[turn.seat]
            marked = turn.action
        boards.append((tuple(cells), marked))
    return boards


def replay_with_rules(match: MatchRecord, turns: list[Turn]) -> tuple[list[dict[int, str]] | None, tuple[str, ...], str | None]:
    """Play the match again through its game's rules, from its seed, as the arena did
    (`arena.match`: the state is made with `random.Random(seed)`, each valid answer
    applied with its message): the legal actions' names at each step and every
    player's final view. (None, (), why) when the rules cannot replay it."""
    try:
        state = make_game(match.game).new_initial_state(random.Random(match.seed))
        names: list[dict[int, str]] = []
        for turn in turns:
            if state.is_terminal():
                return None, (), "the stored turns go on after the rules end the game"
            names.append({a: state.action_name(a) for a in state.legal_actions()})
            if turn.valid:
                if turn.action not in names[-1]:
                    return None, (), f"the stored move {turn.action_name} is not legal under the rules now"
                state.apply(turn.action, turn.choice.message if state.spec.messages else None)
        views = tuple(state.view(p) for p in range(state.spec.players))
    # A replay only adds names and final views, so any failure of the rules (pyspiel
    # raises its own RuntimeError) leaves the stored match to show as it is.
    except (SparringError, RuntimeError, ValueError, KeyError, IndexError) as exc:
        return None, (), f"the rules of {match.game} could not replay this match ({exc})"
    return names, views, None
