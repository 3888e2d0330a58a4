"""The game contract every game in sparring fulfils.

A game is described by a frozen `GameSpec` and played through a `State`. Chance is
resolved inside the state from a seeded generator, so agents only ever see decision
points; simultaneous moves are played in turn with the earlier moves of the same
round hidden from the later movers (as OpenSpiel's turn-based conversion does).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class GameSpec:
    """Facts about a game that tournaments, tests and reports read."""

    id: str  # registry id, e.g. "kuhn_poker"
    version: int  # bumped whenever rules or the text view change
    name: str  # human name, e.g. "Kuhn poker"
    players: int
    perfect_information: bool
    chance: bool
    zero_sum: bool
    utility_range: tuple[float, float]  # (min, max) of any player's return
    max_length: int  # most decisions a match can take
    answer_format: str  # what the agent is told to write, e.g. "Answer: <cell number>"
    messages: bool = False  # whether a decision may carry a free-text message
    params: tuple[tuple[str, Any], ...] = ()  # the parameters this instance was built with

    @property
    def ref(self) -> str:
        """The id with its parameters, as a user would write it: `name(k=v,...)`."""
        if not self.params:
            return self.id
        return f"{self.id}({','.join(f'{k}={v}' for k, v in self.params)})"

    @property
    def versioned_ref(self) -> str:
        """The reference with the rules' version, as runs record it: `ref@version`."""
        return f"{self.ref}@{self.version}"


@runtime_checkable
class State(Protocol):
    """One position of a match. Mutated in place by `apply`; `clone` copies it."""

    spec: GameSpec

    def current_player(self) -> int:
        """The seat to move; -1 once the match is over."""

    def is_terminal(self) -> bool: ...

    def legal_actions(self) -> list[int]:
        """Legal action ids for the player to move, ascending; empty when terminal."""

    def action_name(self, action: int) -> str:
        """The text an agent writes to choose `action` in this state."""

    def apply(self, action: int, message: str | None = None) -> None:
        """Play `action` for the current player (and chance that follows it)."""

    def returns(self) -> list[float]:
        """Each seat's return; all zeros until the match is over."""

    def view(self, player: int) -> str:
        """What `player` knows, in words: rules in brief, private information,
        history, and (when it is their turn) the legal actions by name."""

    def private_info(self, player: int) -> list[str]:
        """Strings that only `player` may see (cards, valuations): the contract check
        asserts no other player's view contains them."""

    def clone(self) -> "State": ...


class Game(Protocol):
    """A game family: builds initial states from a seeded generator."""

    spec: GameSpec

    def new_initial_state(self, rng: random.Random) -> State:
        """A new match whose chance events are drawn from `rng`: give each match a
        generator of its own, and the same seed replays the same match."""


def legal_action_names(state: State) -> dict[str, int]:
    """Map each legal action's name to its id."""
    return {state.action_name(a): a for a in state.legal_actions()}
