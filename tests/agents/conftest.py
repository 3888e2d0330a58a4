"""Shared helper for the agent tests: a plain match loop, kept apart from the
arena so agent tests do not depend on it (solver caches go to the session's
throw-away cache, tests/conftest.py)."""

from __future__ import annotations

import random

import pytest

from sparring.agents.base import Decision


def play(game, agents, seed: int) -> list[float]:
    """One match, agents[i] in seat i; returns each seat's return. Every decision
    gets its own generator derived from (seed, turn), as the arena does."""
    state = game.new_initial_state(random.Random(seed))
    turn = 0
    while not state.is_terminal():
        player = state.current_player()
        turn_seed = random.Random(f"{seed}/{turn}").getrandbits(63)
        decision = Decision(state=state, player=player, rng=random.Random(turn_seed), seed=turn_seed)
        (choice,) = agents[player].act([decision])
        state.apply(choice.action)
        turn += 1
    return state.returns()


@pytest.fixture
def play_match():
    """`play` as a fixture: importing `conftest` by name breaks once another
    test folder has a conftest.py of its own."""
    return play
