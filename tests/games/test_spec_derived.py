"""Every registered OpenSpiel-backed game's spec agrees with what pyspiel states."""

from __future__ import annotations

import pyspiel
import pytest

from sparring.games.openspiel import OpenSpielGame
from sparring.games.registry import game_ids, make_game

OPENSPIEL_GAME_IDS = [g for g in game_ids() if isinstance(make_game(g), OpenSpielGame)]


def test_the_registry_has_openspiel_games():
    # Guards the filter above: were games wrapped, the test below would run on nothing.
    assert OPENSPIEL_GAME_IDS, f"no registered game is an OpenSpielGame: {game_ids()}"


@pytest.mark.parametrize("game_id", OPENSPIEL_GAME_IDS)
def test_spec_states_what_openspiel_states(game_id):
    game = make_game(game_id)
    spec, os_game = game.spec, game.os_game
    gtype = os_game.get_type()
    assert spec.players == os_game.num_players()
    assert spec.perfect_information == (gtype.information == pyspiel.GameType.Information.PERFECT_INFORMATION)
    assert spec.chance == (gtype.chance_mode != pyspiel.GameType.ChanceMode.DETERMINISTIC)
    assert spec.zero_sum == (gtype.utility == pyspiel.GameType.Utility.ZERO_SUM)
    assert spec.utility_range == (os_game.min_utility(), os_game.max_utility())
    # Our max_length counts decisions; OpenSpiel's max_game_length does too, and
    # max_move_number adds the chance nodes on top.
    assert spec.max_length == os_game.max_game_length()
    assert spec.max_length + os_game.max_chance_nodes_in_history() == os_game.max_move_number()
