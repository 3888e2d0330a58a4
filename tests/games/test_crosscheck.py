"""Rules and views checked against OpenSpiel, move for move, over seeded random play."""

from __future__ import annotations

import random
import re
from collections import Counter

import pyspiel
import pytest

from sparring.games.leduc_poker import card_name
from sparring.games.matrix import PRESETS
from sparring.games.registry import make_game


def _random_match(ref: str, seed: int):
    """Yield (state before the move, action) through a seeded random match; the final
    state is returned by the generator."""
    rng = random.Random(seed)
    state = make_game(ref).new_initial_state(rng)
    while not state.is_terminal():
        action = rng.choice(state.legal_actions())
        yield state, action
        state.apply(action)
    return state


def _play(ref: str, seed: int):
    gen = _random_match(ref, seed)
    try:
        while True:
            next(gen)
    except StopIteration as stop:
        return stop.value


# -- the own matrix game against OpenSpiel's repeated game ------------------------------


def _openspiel_repeated(payoffs, rounds):
    row = [[payoffs[0][0], payoffs[1][0]], [payoffs[2][0], payoffs[3][0]]]
    col = [[payoffs[0][1], payoffs[1][1]], [payoffs[2][1], payoffs[3][1]]]
    stage = pyspiel.create_matrix_game(row, col)
    return pyspiel.convert_to_turn_based(pyspiel.create_repeated_game(stage, {"num_repetitions": rounds}))


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("rounds", [1, 3, 7])
def test_matrix_matches_openspiel_repeated_game(preset, rounds):
    reference = _openspiel_repeated(PRESETS[preset].payoffs, rounds)
    for seed in range(60):
        rng = random.Random(seed)
        ours = make_game(f"matrix(preset={preset},rounds={rounds})").new_initial_state(rng)
        theirs = reference.new_initial_state()
        while not theirs.is_terminal():
            assert ours.current_player() == theirs.current_player()
            assert ours.legal_actions() == theirs.legal_actions()
            assert ours.returns() == [0.0, 0.0]
            action = rng.choice(ours.legal_actions())
            ours.apply(action)
            theirs.apply_action(action)
        assert ours.is_terminal() and ours.current_player() == -1
        assert ours.returns() == pytest.approx(theirs.returns())


def test_matrix_custom_table_matches_openspiel_matrix_pd():
    # OpenSpiel's own prisoner's dilemma stage game, read from OpenSpiel.
    pd = pyspiel.load_game("matrix_pd")
    payoffs = [[pd.player_utility(0, r, c), pd.player_utility(1, r, c)] for r in (0, 1) for c in (0, 1)]
    reference = pyspiel.load_game_as_turn_based("repeated_game(stage_game=matrix_pd(),num_repetitions=4)")
    game = make_game(f"matrix(payoffs={payoffs},rounds=4)")
    for seed in range(100):
        rng = random.Random(seed)
        ours, theirs = game.new_initial_state(rng), reference.new_initial_state()
        while not theirs.is_terminal():
            action = rng.choice(ours.legal_actions())
            ours.apply(action)
            theirs.apply_action(action)
        assert ours.is_terminal()
        assert ours.returns() == pytest.approx(theirs.returns())


def test_matrix_hand_worked_prisoners_dilemma():
    state = make_game("matrix(rounds=3)").new_initial_state(random.Random(0))
    for action in [0, 0, 0, 1, 1, 1]:  # (C,C) 3/3, (C,D) 0/5, (D,D) 1/1
        state.apply(action)
    assert state.returns() == [4.0, 9.0]


def test_matrix_second_mover_does_not_see_first_choice():
    state = make_game("matrix").new_initial_state(random.Random(0))
    state.apply(1)  # row player defects
    view = state.view(1)
    assert "defect" in view  # the rules name both actions ...
    assert "you already chose" not in view and "Round 1:" not in view  # ... but not this choice
    assert "already chose: defect" in state.view(0)


# -- OpenSpiel-backed games: our views agree with OpenSpiel's own strings ------------------


def test_tictactoe_board_matches_openspiel():
    for seed in range(30):
        gen = _random_match("tictactoe", seed)
        for state, _ in gen:
            ours = "".join(c.lower() if c in "XO" else "." for c in state.board())
            assert ours == state.os_state.observation_string(0).replace("\n", "")


def test_tictactoe_hand_worked_win():
    state = make_game("tictactoe").new_initial_state(random.Random(0))
    for cell in ["1", "2", "5", "3", "9"]:  # X takes the diagonal 1-5-9
        state.apply({state.action_name(a): a for a in state.legal_actions()}[cell])
    assert state.is_terminal() and state.returns() == [1.0, -1.0]
    assert "you won" in state.view(0) and "you lost" in state.view(1)


def test_connect_four_grid_matches_openspiel():
    for seed in range(20):
        for state, _ in _random_match("connect_four", seed):
            ours = "".join("".join(row).lower() for row in reversed(state.grid()))
            assert ours == state.os_state.observation_string(0).replace("\n", "")


def test_kuhn_cards_match_openspiel_and_deal_is_uniform():
    deals = Counter()
    for seed in range(3000):
        state = make_game("kuhn_poker").new_initial_state(random.Random(seed))
        for p in (0, 1):
            # OpenSpiel's information state starts with the player's card number.
            card = int(state.os_state.information_state_string(p)[0])
            assert f"Your card: {['Jack', 'Queen', 'King'][card]}." in state.view(p)
        deals[tuple(state.chance)] += 1
    assert len(deals) == 6  # every ordered pair of distinct cards
    assert all(abs(n / 3000 - 1 / 6) < 0.03 for n in deals.values()), deals


def test_leduc_cards_and_chips_match_openspiel():
    private = re.compile(r"\[Private: (\d+)\]")
    public = re.compile(r"\[Public: (\d+)\]")
    money = re.compile(r"\[Money: (\d+) (\d+)\]")
    for seed in range(200):
        gen = _random_match("leduc_poker", seed)
        for state, _ in gen:
            for p in (0, 1):
                info = state.os_state.information_state_string(p)
                assert f"Your private card: {card_name(int(private.search(info).group(1)))}." in state.view(p)
                if public.search(info):
                    assert f"Public card: {card_name(int(public.search(info).group(1)))}." in state.view(p)
                m = money.search(info)
                assert state.chips_in() == [100 - int(m.group(1)), 100 - int(m.group(2))]


def test_leduc_card_names_rank_hands_as_openspiel_does():
    """At every showdown, the winner by the view's card names (pair, else higher rank)
    is the winner by OpenSpiel's returns."""
    ranks = ["Jack", "Queen", "King"]
    showdowns = 0
    for seed in range(400):
        state = _play("leduc_poker", seed)
        if state.history[-1][2] == "fold":
            continue
        showdowns += 1
        public = card_name(state.chance[2]).split()[0]
        mine = [card_name(state.chance[p]).split()[0] for p in (0, 1)]
        strength = [(m == public, ranks.index(m)) for m in mine]
        expected = 0 if strength[0] == strength[1] else (1 if strength[0] > strength[1] else -1)
        assert (state.returns()[0] > 0) - (state.returns()[0] < 0) == expected
    assert showdowns > 50


@pytest.mark.parametrize("numdice", [1, 2])
def test_liars_dice_rules_in_the_view_match_openspiel(numdice):
    """Dice in the view are OpenSpiel's; a challenged bid NxF is true when at least N
    dice show F or 6 (wild), and then the bidder wins, as the view says."""
    for seed in range(300):
        state = _play(f"liars_dice(numdice={numdice})", seed)
        for p in (0, 1):
            info = state.os_state.information_state_string(p)
            assert " ".join(info[:numdice]) == " ".join(map(str, state.dice(p)))
        bidder, _, bid = state.history[-2]
        assert state.history[-1][2] == "liar"
        n, face = map(int, bid.split("x"))
        dice = state.dice(0) + state.dice(1)
        true_bid = sum(d == face or d == 6 for d in dice) >= n
        winner = bidder if true_bid else 1 - bidder
        assert state.returns()[winner] == 1.0 and state.returns()[1 - winner] == -1.0


# -- the generic OpenSpiel adapter ---------------------------------------------------------


def test_generic_openspiel_spec_and_names():
    game = make_game("openspiel:goofspiel(num_cards=4)")
    spec = game.spec
    assert spec.id == "openspiel:goofspiel" and spec.ref == "openspiel:goofspiel(num_cards=4)"
    assert spec.players == 2 and spec.zero_sum and spec.utility_range == (-1.0, 1.0)
    assert spec.max_length == 8  # 4 rounds, two turn-based moves each
    state = game.new_initial_state(random.Random(0))
    assert [state.action_name(a) for a in state.legal_actions()] == ["Bid: 1", "Bid: 2", "Bid: 3", "Bid: 4"]
    state.apply(state.legal_actions()[2])
    # The second mover does not learn the first mover's bid of this round.
    assert "Observer's action this turn" not in state.view(1)
    assert "Observer's action this turn: 2" in state.view(0)  # OpenSpiel prints the action id
    assert state.private_info(0) == ["Observer's action this turn: 2"]


def test_chance_uses_only_the_passed_generator():
    random.seed(1)
    a = make_game("leduc_poker").new_initial_state(random.Random(5))
    random.seed(2)
    b = make_game("leduc_poker").new_initial_state(random.Random(5))
    assert a.chance == b.chance
    clone = a.clone()
    for state in (a, clone):
        while not state.is_terminal():
            state.apply(state.legal_actions()[-1] if len(state.history) < 2 else state.legal_actions()[1])
    assert a.chance == clone.chance and a.returns() == clone.returns()
