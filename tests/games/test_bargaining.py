"""Bargaining: hand-worked pools, valuations and sequences with their exact outcomes."""

from __future__ import annotations

import random

import pytest

from sparring.errors import SparringError
from sparring.games.bargaining import valuations
from sparring.games.core import legal_action_names
from sparring.games.registry import make_game

# Pool: 1 book, 2 hats, 3 balls. Player 1: book 4, hat 0, ball 2 (4+0+6 = 10).
# Player 2: book 1, hat 3, ball 1 (1+6+3 = 10).
REF = "bargaining(counts=[1,2,3],values=[[4,0,2],[1,3,1]])"


def play(names: list[str], ref: str = REF, messages: list[str | None] | None = None):
    state = make_game(ref).new_initial_state(random.Random(0))
    for i, name in enumerate(names):
        legal = legal_action_names(state)
        assert name in legal, f"{name!r} not legal; legal: {sorted(legal)[:5]}..."
        state.apply(legal[name], messages[i] if messages else None)
    return state


def test_accepted_proposal_pays_each_their_own_values():
    # Player 1 keeps the book and 3 balls (4 + 6 = 10); Player 2 gets 2 hats (6).
    state = play(["propose 1 0 3", "accept"])
    assert state.is_terminal() and state.returns() == [10.0, 6.0]


def test_counter_proposal_accepted_by_first_player():
    # Player 2 keeps 2 hats and 1 ball (6 + 1 = 7); Player 1 gets book + 2 balls (4 + 4 = 8).
    state = play(["propose 1 2 3", "propose 0 2 1", "accept"])
    assert state.returns() == [8.0, 7.0]


def test_accept_takes_only_the_latest_proposal():
    # Player 1's greedy 1 2 3 is superseded; Player 1 then offers 0 0 0 (gets nothing),
    # and Player 2, accepting, gets the whole pool: 10.
    state = play(["propose 1 2 3", "propose 1 2 3", "propose 0 0 0", "accept"])
    assert state.returns() == [0.0, 10.0]


def test_walk_gives_both_zero():
    state = play(["propose 1 0 3", "walk"])
    assert state.is_terminal() and state.returns() == [0.0, 0.0]


def test_turn_limit_without_deal_gives_both_zero():
    state = play(["propose 1 0 3", "propose 0 2 0", "propose 1 0 3", "propose 0 2 0"], REF[:-1] + ",max_turns=4)")
    assert state.is_terminal() and state.returns() == [0.0, 0.0] and state.legal_actions() == []


def test_accept_is_legal_only_when_a_proposal_stands():
    state = make_game(REF).new_initial_state(random.Random(0))
    names = legal_action_names(state)
    assert "accept" not in names and "walk" in names
    assert len(names) == 1 + 2 * 3 * 4  # walk + every split of 1 book, 2 hats, 3 balls
    state.apply(names["propose 0 1 1"])
    assert "accept" in legal_action_names(state)


def test_messages_reach_the_other_player_and_values_stay_private():
    state = play(["propose 1 0 3"], messages=["I  really\nneed the balls"])
    view = state.view(1)
    assert '"I really need the balls"' in view
    assert "you would get 0 books, 2 hats, 0 balls, worth 6 to you" in view
    assert "book 4, hat 0, ball 2" not in view and "book 1, hat 3, ball 1" in view
    assert "Legal actions" in view and "accept" in view


def test_sampled_pools_have_equal_totals_and_nothing_worthless_to_both():
    game = make_game("bargaining")
    for seed in range(200):
        state = game.new_initial_state(random.Random(seed))
        assert all(1 <= c <= 3 for c in state.counts)
        for v in state.values:
            assert sum(c * x for c, x in zip(state.counts, v)) == 10
        assert all(a or b for a, b in zip(*state.values))


def test_valuations_enumerates_by_hand():
    # 2 books, 1 hat, 1 ball worth 4 in all: b, h, l >= 0 with 2b + h + l = 4.
    assert set(valuations((2, 1, 1), 4)) == {
        (0, 0, 4), (0, 1, 3), (0, 2, 2), (0, 3, 1), (0, 4, 0),
        (1, 0, 2), (1, 1, 1), (1, 2, 0), (2, 0, 0),
    }


@pytest.mark.parametrize(
    "ref, words",
    [
        ("bargaining(counts=[3,3,3])", "no integer values"),
        ("bargaining(counts=[1,2,3],values=[[1,1,1],[1,3,1]])", "both must be worth"),
        ("bargaining(values=[[4,0,2],[1,3,1]])", "need fixed counts"),
        ("bargaining(max_turns=0)", "max_turns"),
    ],
)
def test_bad_parameters_say_what_to_change(ref, words):
    with pytest.raises(SparringError, match=words):
        make_game(ref)
