"""Oracles: given the population's mixture, a new member that does well against it.

An oracle is any callable `(game, mixture) -> TabularPolicy`: the exact best
response here, and a learned one (an LLM trained against the mixture, then read off
with `agent_policy`) plugs in the same way.
"""

from __future__ import annotations

from collections.abc import Callable

import pyspiel
from open_spiel.python import policy as os_policy

from sparring.eval.exploitability import MAX_HISTORIES, MAX_INFO_STATES
from sparring.games.openspiel import OpenSpielGame
from sparring.learn.population.metagame import (
    check_member,
    to_pyspiel,
    two_player_zero_sum,
)

Oracle = Callable[[OpenSpielGame, os_policy.TabularPolicy], os_policy.TabularPolicy]


def exact_best_response(
    game: OpenSpielGame,
    mixture: os_policy.TabularPolicy,
    max_info_states: int = MAX_INFO_STATES,
    max_histories: int = MAX_HISTORIES,
) -> os_policy.TabularPolicy:
    """Each seat's best response to `mixture` in the other seat, as one policy that
    plays seat 0's in seat 0 and seat 1's in seat 1: PSRO's exact oracle (Lanctot et
    al. 2017; McMahan et al. 2003's double oracle). Computed by OpenSpiel's C++
    `TabularBestResponse` (algorithms/best_response.h, a walk of the whole tree);
    pure, with ties going to the action OpenSpiel finds first.

    Against the mixture it earns, averaged over the two seats, exactly the mixture's
    exploitability. Refuses with a SparringError a game that is not small, 2-player,
    zero-sum and of imperfect information (`two_player_zero_sum`).
    """
    os_game = two_player_zero_sum(game, max_info_states, max_histories)
    check_member(os_game, mixture)
    opponent = to_pyspiel(mixture)
    response = os_policy.TabularPolicy(os_game)
    for seat in range(2):
        actions = pyspiel.TabularBestResponse(os_game, seat, opponent).get_best_response_actions()
        for key, action in actions.items():  # every information state of `seat`
            row = response.policy_for_key(key)
            row[:] = 0.0
            row[action] = 1.0
    return response
