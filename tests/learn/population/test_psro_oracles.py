"""The exact best-response oracle against OpenSpiel's Python best response and its
exploitability, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest
from open_spiel.python.algorithms import exploitability as os_exploitability
from open_spiel.python.algorithms.best_response import BestResponsePolicy
from open_spiel.python.algorithms.expected_game_score import policy_value

from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.learn.population.oracles import exact_best_response


@pytest.mark.parametrize("seed", [0, 1])
def test_each_seat_earns_the_best_response_value(kuhn, random_policy, seed):
    os_game = kuhn.os_game
    opponent = random_policy(os_game, seed)
    response = exact_best_response(kuhn, opponent)
    probs = response.action_probability_array
    assert set(np.unique(probs)) == {0.0, 1.0} and (probs.sum(axis=1) == 1).all()  # pure
    earned = [
        policy_value(os_game.new_initial_state(), [response, opponent])[0],
        policy_value(os_game.new_initial_state(), [opponent, response])[1],
    ]
    # OpenSpiel's Python best response (another implementation than the C++ one used)
    best = [BestResponsePolicy(os_game, seat, opponent).value(os_game.new_initial_state()) for seat in range(2)]
    assert earned == pytest.approx(best, abs=1e-12)
    # in a zero-sum game with value 0 over both seats, exploitability = mean best-response value
    assert np.mean(earned) == pytest.approx(os_exploitability.exploitability(os_game, opponent), abs=1e-12)


def test_best_response_to_uniform_random_kuhn_gains_its_exploitability(kuhn, random_policy):
    uniform = random_policy(kuhn.os_game, 0)
    uniform.action_probability_array = uniform.legal_actions_mask / uniform.legal_actions_mask.sum(axis=1, keepdims=True)
    response = exact_best_response(kuhn, uniform)
    earned = policy_value(kuhn.os_game.new_initial_state(), [response, uniform])[0]
    earned += policy_value(kuhn.os_game.new_initial_state(), [uniform, response])[1]
    assert earned / 2 == pytest.approx(11 / 24, abs=1e-12)  # DESIGN.md: 0.4583


def test_refuses_perfect_information_saying_what_fits():
    game = make_game("tictactoe")
    with pytest.raises(SparringError, match="tictactoe has perfect information.*kuhn_poker, leduc_poker"):
        exact_best_response(game, None)


@pytest.mark.parametrize("ref, limit, message", [
    ("leduc_poker", 100, r"more than 100 information states.*raise max_info_states or pick smaller parameters"),
    ("liars_dice", 10_000, r"more than 10,000 information states.*raise max_info_states or pick smaller parameters"),
])
def test_refuses_a_game_too_large_to_enumerate(ref, limit, message):
    with pytest.raises(SparringError, match="enumerates every information state.*" + message):
        exact_best_response(make_game(ref), None, max_info_states=limit)


def test_refuses_games_that_are_not_2_player_zero_sum():
    with pytest.raises(SparringError, match=r"not a 2-player zero-sum game.*use kuhn_poker"):
        exact_best_response(make_game("openspiel:kuhn_poker(players=3)"), None)
    with pytest.raises(SparringError, match="own rules"):
        exact_best_response(make_game("bargaining"), None)
