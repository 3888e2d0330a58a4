"""A mixture agent draws one member per match and seat by weight and keeps it to the
end of the match. Played that way it is the reach-weighted behaviour policy (Kuhn
1953): over many matches against a fixed opponent it earns what OpenSpiel's
`expected_returns` gives that policy, within the sampling interval, and its exact
exploitability is that policy's."""

import math

import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms import exploitability as os_exploitability

from sparring.agents.mixture import MixtureAgent
from sparring.agents.registry import AgentFactory
from sparring.agents.scripted import FixedActionAgent, RandomAgent
from sparring.agents.solvers import TabularAgent
from sparring.arena.match import play_matches, rotating_plan
from sparring.errors import SparringError
from sparring.eval.exploitability import agent_policy, exploitability_report
from sparring.eval.mixture import mixture_policy
from sparring.games.registry import make_game


@pytest.fixture(scope="module")
def kuhn():
    return make_game("kuhn_poker")


def random_table(os_game, seed: int) -> os_policy.TabularPolicy:
    policy = os_policy.TabularPolicy(os_game)
    draws = np.random.default_rng(seed).random(policy.action_probability_array.shape) * policy.legal_actions_mask
    policy.action_probability_array[:] = draws / draws.sum(axis=1, keepdims=True)
    return policy


def as_agent(os_game, policy: os_policy.TabularPolicy) -> TabularAgent:
    table = {key: {a: float(policy.action_probability_array[i][a]) for a in np.flatnonzero(policy.legal_actions_mask[i])}
             for key, i in policy.state_lookup.items()}
    return TabularAgent(os_game, table)


def test_each_seat_keeps_one_member_per_match_drawn_by_weight(kuhn):
    mixture = MixtureAgent([FixedActionAgent("bet", game=kuhn), FixedActionAgent("pass", game=kuhn)], [0.3, 0.7],
                           ["bettor", "passer"])
    results = play_matches(rotating_plan(kuhn, [mixture, mixture], range(2000), run_seed=5))
    bettors = 0
    for result in results:
        for seat in (0, 1):
            moves = {t.action_name for t in result.turns if t.seat == seat}
            assert len(moves) == 1  # one member played the seat throughout
            bettors += moves == {"bet"}
    # 4000 independent draws of weight 0.3: within 4 standard deviations
    assert abs(bettors / 4000 - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 4000)
    again = play_matches(rotating_plan(kuhn, [mixture, mixture], range(2000), run_seed=5))
    assert [r.returns for r in again] == [r.returns for r in results]  # the draw follows the match seed


def test_played_per_match_it_earns_the_reach_weighted_policys_expected_return(kuhn):
    """Always-bet and always-pass: drawn per match, a passer never calls a bet; drawn
    per decision it would call 30% of the time, worth about +0.1 a game in the first
    seat against random, which 4 standard errors here (0.07) tell apart."""
    os_game = kuhn.os_game
    agents = [FixedActionAgent("bet", game=kuhn), FixedActionAgent("pass", game=kuhn)]
    weights = [0.3, 0.7]
    mixture = MixtureAgent(agents, weights, ["bettor", "passer"])
    results = play_matches(rotating_plan(kuhn, [mixture, RandomAgent()], range(10_000), run_seed=0))
    first_seat = np.array([r.returns[0] for r in results if r.seats[0] == "mixture"])
    members = [agent_policy(kuhn, agent, mode="exact").policy for agent in agents]
    behaviour = os_policy.python_policy_to_pyspiel_policy(mixture_policy(kuhn, members, weights))
    uniform = os_policy.python_policy_to_pyspiel_policy(os_policy.TabularPolicy(os_game))
    exact = pyspiel.expected_returns(os_game.new_initial_state(), [behaviour, uniform], -1, True)[0]
    standard_error = first_seat.std(ddof=1) / math.sqrt(len(first_seat))
    assert abs(first_seat.mean() - exact) < 4 * standard_error


def test_its_exploitability_is_the_reach_weighted_policys(kuhn):
    os_game = kuhn.os_game
    members = [random_table(os_game, 3), random_table(os_game, 4), random_table(os_game, 5)]
    weights = [0.5, 0.0, 0.5]  # a member of weight 0 is never asked
    mixture = MixtureAgent([as_agent(os_game, m) for m in members], weights, ["a", "b", "c"])
    read = agent_policy(kuhn, mixture)
    assert read.mode == "exact"
    expected = os_exploitability.exploitability(os_game, mixture_policy(kuhn, members, weights))
    assert exploitability_report(kuhn, read.policy).exploitability == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("members, weights, labels, why", [
    ([], [], [], "one weight and one label per member"),
    ([RandomAgent()], [1.0, 2.0], ["a"], "one weight and one label per member"),
    ([RandomAgent(), RandomAgent()], [0.0, 0.0], ["a", "b"], "not all 0"),
    ([RandomAgent()], [float("nan")], ["a"], "non-negative"),
])
def test_bad_mixtures_are_refused(members, weights, labels, why):
    with pytest.raises(SparringError, match=why):
        MixtureAgent(members, weights, labels)


def test_its_policy_is_read_from_exact_member_distributions_only(kuhn):
    mixture = MixtureAgent([RandomAgent(), as_agent(kuhn.os_game, random_table(kuhn.os_game, 1))], [0.5, 0.5],
                           ["random", "table"])
    with pytest.raises(SparringError, match="member random gives no exact action distribution"):
        agent_policy(kuhn, mixture, mode="sampled")


def test_a_mixture_reference_names_a_population_folder(kuhn, tmp_path):
    factory = AgentFactory(kuhn)
    with pytest.raises(SparringError, match="no members.json in"):
        factory.make(f"mixture(path={tmp_path})")
    with pytest.raises(SparringError, match="takes one option, the folder"):
        factory.make("mixture(members=3)")
