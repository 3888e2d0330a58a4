"""HumanAgent with scripted input: names, numbers, bad answers, closed input."""

from __future__ import annotations

import io
import random

import pytest

from sparring.agents.base import Decision
from sparring.agents.human import HumanAgent
from sparring.errors import SparringError
from sparring.games.registry import make_game


def ask(game_id: str, typed: str, seed: int = 0, before: tuple[int, ...] = ()):
    state = make_game(game_id).new_initial_state(random.Random(seed))
    for action in before:
        state.apply(action)
    out = io.StringIO()
    agent = HumanAgent(io.StringIO(typed), out)
    choice = agent.act([Decision(state, state.current_player(), random.Random(0), 0)])[0]
    return choice.action, out.getvalue(), state


def test_a_bad_answer_is_explained_and_asked_again():
    action, shown, state = ask("kuhn_poker", "raise\n\nBet\n")
    assert action == 1  # Kuhn: 0 pass, 1 bet
    assert shown.count("not a legal action") == 2
    assert state.view(0) in shown  # the player's own view is printed
    assert shown.count("your move") == 3


def test_a_number_picks_from_the_printed_list():
    action, shown, _ = ask("kuhn_poker", "1\n")
    assert action == 0
    assert "[1] pass" in shown and "[2] bet" in shown


def test_answer_prefix_is_accepted():
    assert ask("kuhn_poker", "Answer: PASS\n")[0] == 0


def test_numbered_actions_are_read_as_names_not_list_positions():
    # With X on the centre, "5" is no longer a cell, and "4" means cell 4 (action 3),
    # not the 4th entry of a list.
    action, shown, _ = ask("tictactoe", "5\n4\n", before=(4,))
    assert action == 3
    assert "not a legal action" in shown


def test_closed_input_raises_a_sparring_error():
    with pytest.raises(SparringError, match="input closed"):
        ask("kuhn_poker", "nonsense\n")
