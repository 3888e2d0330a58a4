"""The mixture as one behaviour policy, against a reach-weighted average built here
by hand and against Kuhn's theorem: the mixture earns against any opponent the
sigma-weighted average of what its members earn."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms import exploitability as os_exploitability
from open_spiel.python.algorithms.expected_game_score import policy_value

from sparring.errors import SparringError
from sparring.eval.mixture import mixture_policy

WEIGHTS = (0.3, 0.7)


def hand_built_average(os_game, members, weights) -> dict[str, dict[int, float]]:
    """Information state -> {action: probability}: sum_i w_i r_i(s) pi_i(a|s) / sum_i
    w_i r_i(s), with r_i(s) the acting player's own reach under member i, found by
    walking every history (all histories of s share r_i(s) under perfect recall, so
    summing over them scales numerator and denominator alike)."""
    numerator: dict[str, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    denominator: dict[str, float] = defaultdict(float)
    stack = [(os_game.new_initial_state(), np.ones((len(members), 2)))]  # own reach [member, player]
    while stack:
        state, reach = stack.pop()
        if state.is_terminal():
            continue
        if state.is_chance_node():
            stack.extend((state.child(a), reach) for a, _ in state.chance_outcomes())
            continue
        player, key = state.current_player(), state.information_state_string()
        probs = [member.action_probabilities(state) for member in members]
        for i, w in enumerate(weights):
            denominator[key] += w * reach[i, player]
            for a, p in probs[i].items():
                numerator[key][a] += w * reach[i, player] * p
        for a in state.legal_actions():
            child_reach = reach.copy()
            child_reach[:, player] *= [p.get(a, 0.0) for p in probs]
            stack.append((state.child(a), child_reach))
    return {key: {a: v / denominator[key] for a, v in numerator[key].items()} for key in numerator if denominator[key] > 0}


@pytest.mark.parametrize("game_name", ["kuhn", "leduc"])
def test_mixture_is_the_reach_weighted_average(request, random_policy, game_name):
    game = request.getfixturevalue(game_name)
    members = [random_policy(game.os_game, 1), random_policy(game.os_game, 2)]
    mixture = mixture_policy(game, members, WEIGHTS)
    by_hand = hand_built_average(game.os_game, members, WEIGHTS)
    assert len(by_hand) == len(mixture.state_lookup)  # random members reach every state
    for key, probs in by_hand.items():
        row = mixture.policy_for_key(key)
        assert [row[a] for a in probs] == pytest.approx(list(probs.values()), abs=1e-12)
    # and OpenSpiel's exploitability of the two agrees
    table = os_policy.TabularPolicy(game.os_game)
    for key, probs in by_hand.items():
        table.policy_for_key(key)[list(probs)] = list(probs.values())
    assert os_exploitability.exploitability(game.os_game, mixture) == pytest.approx(
        os_exploitability.exploitability(game.os_game, table), abs=1e-12
    )
    # the reach weighting matters: the plain average of the rows is another policy
    plain = WEIGHTS[0] * members[0].action_probability_array + WEIGHTS[1] * members[1].action_probability_array
    assert np.abs(plain - mixture.action_probability_array).max() > 1e-3


def test_mixture_earns_the_weighted_average_of_its_members(kuhn, random_policy, constant_policy):
    """Kuhn's theorem: mixing behaviourally with reach weights is the same strategy as
    picking a member by sigma before the game. Members that never bet leave states
    unreached; the mixture is still exact."""
    os_game = kuhn.os_game
    members = [random_policy(os_game, 3), constant_policy(os_game, 0), constant_policy(os_game, 1)]
    sigma = np.array([0.2, 0.5, 0.3])
    mixture = mixture_policy(kuhn, members, sigma)
    opponent = random_policy(os_game, 4)

    def value(policy, seat: int) -> float:
        seats = [policy, opponent] if seat == 0 else [opponent, policy]
        return policy_value(os_game.new_initial_state(), seats)[seat]

    for seat in range(2):
        expected = sum(s * value(m, seat) for s, m in zip(sigma, members))
        assert value(mixture, seat) == pytest.approx(expected, abs=1e-12)


def test_weights_are_normalised_and_zero_weights_skipped(kuhn, random_policy):
    members = [random_policy(kuhn.os_game, 5), random_policy(kuhn.os_game, 6)]
    only_first = mixture_policy(kuhn, members, [2.0, 0.0])
    assert only_first.action_probability_array == pytest.approx(members[0].action_probability_array, abs=1e-12)


@pytest.mark.parametrize("weights, message", [
    ([1.0], "one weight per member: 2 members"),
    ([-0.5, 1.5], "non-negative and not all 0"),
    ([0.0, 0.0], "non-negative and not all 0"),
])
def test_refuses_bad_weights(kuhn, random_policy, weights, message):
    members = [random_policy(kuhn.os_game, 5), random_policy(kuhn.os_game, 6)]
    with pytest.raises(SparringError, match=message):
        mixture_policy(kuhn, members, weights)
