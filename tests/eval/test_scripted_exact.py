"""Scripted agents report their exact action distribution, so exploitability reads
their policy off exactly: uniform random in Kuhn is exploitable by 11/24 (DESIGN.md,
OpenSpiel's exploitability_test.py), to float precision rather than sampling error."""

from __future__ import annotations

import random

import pytest
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms import exploitability as os_exploitability

from sparring.agents.base import Decision
from sparring.agents.scripted import FixedActionAgent, RandomAgent
from sparring.eval.exploitability import agent_policy, exploitability_report
from sparring.games.registry import make_game

RAISE = 2  # Leduc's actions: fold 0, call 1, raise 2


def test_random_agent_is_exact_with_kuhns_exploitability():
    kuhn = make_game("kuhn_poker")
    pol = agent_policy(kuhn, RandomAgent())
    assert (pol.mode, pol.act_calls, pol.decisions) == ("exact", 1, 12)
    report = exploitability_report(kuhn, pol)
    assert report.exploitability == pytest.approx(11 / 24, abs=1e-6)
    assert report.nash_conv == pytest.approx(11 / 12, abs=1e-6)
    assert report.sampling is None


@pytest.mark.parametrize("name, action", [("bet", 1), ("pass", 0)])
def test_fixed_agent_is_exact_and_equals_openspiel_on_the_same_policy(name, action):
    kuhn = make_game("kuhn_poker")
    pol = agent_policy(kuhn, FixedActionAgent(name), mode="exact")
    direct = os_policy.TabularPolicy(kuhn.os_game)
    direct.action_probability_array[:] = 0.0
    direct.action_probability_array[:, action] = 1.0
    assert pol.policy.action_probability_array == pytest.approx(direct.action_probability_array)
    assert exploitability_report(kuhn, pol).exploitability == pytest.approx(
        os_exploitability.exploitability(kuhn.os_game, direct), abs=1e-12
    )


def test_fixed_agent_without_its_action_reports_the_uniform_fallback():
    """Leduc caps raises: where raising is illegal the agent plays a uniform random
    legal action, or its fallback when it has one."""
    leduc = make_game("leduc_poker")
    table = agent_policy(leduc, FixedActionAgent("raise"), mode="exact").table()
    with_fallback = agent_policy(leduc, FixedActionAgent("raise", fallbacks=("call",)), mode="exact").table()
    capped = [key for key, probs in table.items() if RAISE not in probs]
    assert capped and len(capped) < len(table)
    for key, probs in table.items():
        if RAISE in probs:
            assert probs[RAISE] == 1.0 and with_fallback[key][RAISE] == 1.0
        else:
            assert probs == pytest.approx({a: 1 / len(probs) for a in probs})
            assert with_fallback[key] == {0: 0.0, 1: 1.0}


def test_the_sampled_action_is_unchanged_so_matches_replay():
    state = make_game("kuhn_poker").new_initial_state(random.Random(0))
    for seed in range(20):
        decision = Decision(state=state, player=state.current_player(), rng=random.Random(seed), seed=seed)
        (choice,) = RandomAgent().act([decision])
        assert choice.action == random.Random(seed).choice(state.legal_actions())
