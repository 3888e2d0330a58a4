"""A deck: many different games played as one batch through `play_matches`.

A benchmark asks one agent hundreds of different questions (144 payoff tables, six
opponents). `play_matches` plays one `Game`, and batching across all questions is
what makes an LLM agent fast, so the deck is a `Game` whose i-th started match is
a state of its i-th entry. `play_matches` starts matches in the order of the
indices it is given; `Deck.check` verifies after play that every result came from
the entry it should have (by the game reference each result records), so a change
of that order fails loudly instead of scoring answers against the wrong questions.

Each entry carries a tag (which opponent strategy, which question); agents that
must know it (the benchmark's opponent) read it with `Deck.tag_of(state)`.
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from sparring.arena.match import MatchResult
from sparring.errors import SparringError
from sparring.games.core import Game, GameSpec, State


class Deck:
    def __init__(self, entries: list[tuple[Game, Any]]):
        if not entries:
            raise SparringError("a deck needs at least one game")
        players = {game.spec.players for game, _ in entries}
        if len(players) != 1:
            raise SparringError(f"a deck's games must all have the same number of players, got {sorted(players)}")
        self.entries = entries
        # The arena reads the player count and name from here; each state keeps
        # its own spec, so results record the real game of every match.
        self.spec: GameSpec = replace(entries[0][0].spec, name="benchmark deck")
        self._next = 0
        self._tags: dict[int, Any] = {}
        self._states: list[State] = []  # keeps states alive, so their ids stay unique

    def new_initial_state(self, rng: random.Random) -> State:
        if self._next >= len(self.entries):
            raise SparringError(f"the deck has {len(self.entries)} games and all were started")
        game, tag = self.entries[self._next]
        self._next += 1
        state = game.new_initial_state(rng)
        self._tags[id(state)] = tag
        self._states.append(state)
        return state

    def tag_of(self, state: State) -> Any:
        """The tag of the entry a live state was started from."""
        try:
            return self._tags[id(state)]
        except KeyError:
            raise SparringError("this state was not started from this deck") from None

    def check(self, results: list[MatchResult]) -> None:
        """Raise unless result i was played on entry i (results in index order 0..n-1)."""
        for i, result in enumerate(results):
            spec = self.entries[i][0].spec
            expected = f"{spec.ref}@{spec.version}"
            if result.index != i or result.game != expected:
                raise RuntimeError(
                    f"deck order broken: match {result.index} played {result.game}, "
                    f"expected {expected}; play_matches must start matches in index order"
                )
