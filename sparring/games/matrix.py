"""Iterated 2x2 matrix games (prisoner's dilemma, stag hunt, chicken, battle of
the sexes) with own rules, cross-checked against OpenSpiel's repeated game.

Both players choose at once each round; here the row player (Player 1) answers
first and the column player second, and the second mover's view does not show the
first mover's choice of the current round (as OpenSpiel's turn-based conversion).
A match's return is the sum of the round payoffs.

Reference: `matrix(preset=stag_hunt,rounds=5)`, or a custom table
`matrix(payoffs=[[3,3],[0,5],[5,0],[1,1]],actions=[cooperate,defect])`, with the
payoff pairs (row player's, column player's) for the outcomes (A,A), (A,B), (B,A),
(B,B) where A and B are the two actions and the row player's action comes first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sparring.errors import SparringError
from sparring.games.core import GameSpec

Payoffs = tuple[tuple[float, float], ...]  # 4 outcomes x (row, column)


@dataclass(frozen=True)
class Preset:
    title: str
    actions: tuple[str, str]
    payoffs: Payoffs  # outcomes AA, AB, BA, BB; (row payoff, column payoff)


PRESETS: dict[str, Preset] = {
    # Textbook values (Axelrod 1984 for the dilemma): T=5 > R=3 > P=1 > S=0.
    "prisoners_dilemma": Preset("Prisoner's dilemma", ("cooperate", "defect"), ((3, 3), (0, 5), (5, 0), (1, 1))),
    # Mutual stag pays most, hare is safe.
    "stag_hunt": Preset("Stag hunt", ("stag", "hare"), ((4, 4), (0, 3), (3, 0), (2, 2))),
    # Both going straight is the worst outcome.
    "chicken": Preset("Chicken", ("swerve", "straight"), ((3, 3), (1, 4), (4, 1), (0, 0))),
    # Both prefer meeting; the row player prefers opera, the column player football.
    "battle_of_the_sexes": Preset("Battle of the sexes", ("opera", "football"), ((3, 2), (0, 0), (0, 0), (2, 3))),
}
DEFAULT_PRESET = "prisoners_dilemma"
DEFAULT_ROUNDS = 5


def _spec(preset: Preset, rounds: int, params: tuple) -> GameSpec:
    row_min = min(min(p) for p in preset.payoffs)
    row_max = max(max(p) for p in preset.payoffs)
    return GameSpec(
        id="matrix",
        version=1,
        name=f"Iterated {preset.title.lower()}",
        players=2,
        perfect_information=False,  # the second mover does not see the first's choice
        chance=False,
        zero_sum=all(a + b == 0 for a, b in preset.payoffs),
        utility_range=(float(rounds * row_min), float(rounds * row_max)),
        max_length=2 * rounds,
        answer_format=f"Answer: <{preset.actions[0]} or {preset.actions[1]}>",
        params=params,
    )


SPEC = _spec(PRESETS[DEFAULT_PRESET], DEFAULT_ROUNDS, ())


class MatrixState:
    """Rounds played so far as (row action, column action); `pending` is the row
    player's choice in the current round, hidden from the column player."""

    def __init__(self, game: "MatrixGame"):
        self.spec = game.spec
        self.game = game
        self.rounds: list[tuple[int, int]] = []
        self.pending: int | None = None

    def current_player(self) -> int:
        if len(self.rounds) == self.game.num_rounds:
            return -1
        return 0 if self.pending is None else 1

    def is_terminal(self) -> bool:
        return len(self.rounds) == self.game.num_rounds

    def legal_actions(self) -> list[int]:
        return [] if self.is_terminal() else [0, 1]

    def action_name(self, action: int) -> str:
        return self.game.preset.actions[action]

    def apply(self, action: int, message: str | None = None) -> None:
        if self.is_terminal():
            raise ValueError("matrix: the match is over; no action can be applied")
        if action not in (0, 1):
            raise ValueError(f"matrix: action {action} is not legal; legal: [0, 1]")
        if self.pending is None:
            self.pending = action
        else:
            self.rounds.append((self.pending, action))
            self.pending = None

    def payoff(self, row: int, col: int) -> tuple[float, float]:
        return self.game.preset.payoffs[2 * row + col]

    def returns(self) -> list[float]:
        return self._totals() if self.is_terminal() else [0.0, 0.0]

    def _totals(self) -> list[float]:
        totals = [0.0, 0.0]
        for row, col in self.rounds:
            pay = self.payoff(row, col)
            totals[0] += pay[0]
            totals[1] += pay[1]
        return totals

    def view(self, player: int) -> str:
        game, names = self.game, self.game.preset.actions
        other = 1 - player
        lines = [
            f"{game.preset.title}, {game.num_rounds} rounds. Each round you and the other "
            f"player each choose {names[0]} or {names[1]} without seeing the other's choice "
            "this round. Points per round:",
        ]
        for mine in (0, 1):
            for theirs in (0, 1):
                row, col = (mine, theirs) if player == 0 else (theirs, mine)
                pay = self.payoff(row, col)
                lines.append(
                    f"- you {names[mine]}, they {names[theirs]}: you get {pay[player]:g}, they get {pay[other]:g}"
                )
        lines.append(f"Your goal: the most points in total. You are Player {player + 1}.")
        totals = self._totals()
        for i, (row, col) in enumerate(self.rounds, 1):
            acts, pay = (row, col), self.payoff(row, col)
            lines.append(
                f"Round {i}: you {names[acts[player]]}, they {names[acts[other]]}: "
                f"you +{pay[player]:g}, they +{pay[other]:g}"
            )
        if self.rounds and not self.is_terminal():
            lines.append(f"Total so far: you {totals[player]:g}, they {totals[other]:g}.")
        if self.is_terminal():
            lines.append(f"Game over. Final score: you {totals[player]:g}, they {totals[other]:g}.")
            return "\n".join(lines)
        lines.append(f"Round {len(self.rounds) + 1} of {game.num_rounds}.")
        if self.current_player() == player:
            lines.append(f"Your turn. Legal actions: {names[0]} {names[1]}")
            lines.append(f'Answer with one line: "Answer: <action>", for example "Answer: {names[0]}"')
        elif player == 0 and self.pending is not None:
            lines.append(self._pending_line())
        else:
            lines.append("Waiting for the other player.")
        return "\n".join(lines)

    def _pending_line(self) -> str:
        return f"This round you already chose: {self.action_name(self.pending)}. Waiting for the other player."

    def private_info(self, player: int) -> list[str]:
        if player == 0 and self.pending is not None:
            return [self._pending_line()]
        return []

    def clone(self) -> "MatrixState":
        other = object.__new__(MatrixState)
        other.__dict__.update(self.__dict__)
        other.rounds = list(self.rounds)
        return other


class MatrixGame:
    def __init__(self, preset: Preset, num_rounds: int, params: tuple = ()):
        self.preset = preset
        self.num_rounds = num_rounds
        self.spec = _spec(preset, num_rounds, params)

    def new_initial_state(self, rng: random.Random) -> MatrixState:
        return MatrixState(self)  # no chance: rng unused


def make(
    preset: str = DEFAULT_PRESET,
    rounds: int = DEFAULT_ROUNDS,
    payoffs: list | tuple | None = None,
    actions: list | tuple | str | None = None,
) -> MatrixGame:
    """`preset` picks payoffs and action names; `payoffs` and `actions` override them."""
    if preset not in PRESETS:
        raise SparringError(f"matrix: unknown preset '{preset}'; choose one of {', '.join(PRESETS)}")
    if not isinstance(rounds, int) or isinstance(rounds, bool) or rounds < 1:
        raise SparringError(f"matrix: rounds must be a positive integer, got {rounds!r}")
    base = PRESETS[preset]
    table = base.payoffs
    if payoffs is not None:
        try:
            table = tuple((float(a), float(b)) for a, b in payoffs)
        except (TypeError, ValueError):
            table = ()
        if len(table) != 4:
            raise SparringError(
                "matrix: payoffs must be 4 pairs (row payoff, column payoff) for the outcomes "
                "AA, AB, BA, BB, e.g. payoffs=[[3,3],[0,5],[5,0],[1,1]]"
            )
    names = base.actions
    if actions is not None:
        if isinstance(actions, str):
            actions = actions.strip("[]() ").replace("/", ",").split(",")
        names = tuple(str(a).strip().lower() for a in actions)
        if len(names) != 2 or names[0] == names[1] or not all(n.isalpha() for n in names):
            raise SparringError(
                f"matrix: actions must be two different single words, e.g. actions=[cooperate,defect]; got {actions!r}"
            )
    params = tuple(
        (k, v)
        for k, v, default in (("preset", preset, DEFAULT_PRESET), ("rounds", rounds, DEFAULT_ROUNDS))
        if v != default
    )
    if payoffs is not None:
        params += (("payoffs", [list(p) for p in table]),)
    if actions is not None:
        params += (("actions", list(names)),)
    title = base.title if payoffs is None else "2x2 matrix game"
    return MatrixGame(Preset(title, names, table), rounds, params)
