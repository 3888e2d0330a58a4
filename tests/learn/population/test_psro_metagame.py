"""The exact meta-game, checked against OpenSpiel's `expected_returns` called here
directly, against Kuhn's value -1/18 (Kuhn 1950), and against itself built from
scratch; a sampled entry's interval covers the exact entry."""

from __future__ import annotations

import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as os_policy

from sparring.agents.solvers import TabularAgent, solve_cfr
from sparring.errors import SparringError
from sparring.learn.population.metagame import MetaGame, sampled_entry, to_table


def _direct_returns(os_game, seat0: os_policy.TabularPolicy, seat1: os_policy.TabularPolicy) -> np.ndarray:
    """Both seats' expected returns, straight from OpenSpiel's C++ tree walk."""
    policies = [os_policy.python_policy_to_pyspiel_policy(p) for p in (seat0, seat1)]
    return np.array(pyspiel.expected_returns(os_game.new_initial_state(), policies, -1, True))


def test_an_entry_is_openspiel_expected_returns_averaged_over_seats(kuhn, random_policy):
    a, b = random_policy(kuhn.os_game, 1), random_policy(kuhn.os_game, 2)
    meta = MetaGame(kuhn)
    meta.add(a)
    meta.add(b)
    a_first, b_first = _direct_returns(kuhn.os_game, a, b), _direct_returns(kuhn.os_game, b, a)
    assert meta.seat_returns[0, 1] == pytest.approx(a_first, abs=1e-12)
    assert meta.seat_returns[1, 0] == pytest.approx(b_first, abs=1e-12)
    assert meta.matrix[0, 1] == pytest.approx((a_first[0] + b_first[1]) / 2, abs=1e-12)
    assert abs(meta.matrix[0, 1]) > 1e-3  # two random policies are not equally strong


def test_a_nash_member_against_itself_gets_kuhns_value(kuhn):
    solved = solve_cfr(kuhn.os_game).to_python(kuhn.os_game)
    meta = MetaGame(kuhn)
    meta.add(solved)
    assert meta.seat_returns[0, 0] == pytest.approx([-1 / 18, 1 / 18], abs=1e-3)
    assert meta.matrix[0, 0] == 0.0  # a member ties itself once it plays both seats


def test_incremental_add_equals_recomputing_from_scratch(kuhn, random_policy, constant_policy, monkeypatch):
    members = [random_policy(kuhn.os_game, s) for s in range(3)] + [constant_policy(kuhn.os_game, 1)]
    meta = MetaGame(kuhn)
    for member in members[:-1]:
        meta.add(member)
    walks = []
    real = pyspiel.expected_returns
    monkeypatch.setattr(pyspiel, "expected_returns", lambda *args: walks.append(args) or real(*args))
    meta.add(members[-1])
    assert len(walks) == 2 * 3 + 1  # only the new row and column

    n = len(members)
    scratch = np.array([[_direct_returns(kuhn.os_game, members[i], members[j]) for j in range(n)] for i in range(n)])
    assert meta.seat_returns == pytest.approx(scratch, abs=1e-12)
    matrix = meta.matrix
    assert matrix == pytest.approx(-matrix.T, abs=1e-12)  # antisymmetric
    assert matrix == pytest.approx((scratch[:, :, 0] + scratch[:, :, 1].T) / 2, abs=1e-12)


def test_refuses_a_member_that_is_not_a_policy_of_the_game(kuhn, leduc, random_policy):
    meta = MetaGame(kuhn)
    with pytest.raises(SparringError, match="TabularPolicy.*agent_policy"):
        meta.add(os_policy.UniformRandomPolicy(kuhn.os_game))
    with pytest.raises(SparringError, match="information states are not those of kuhn_poker"):
        meta.add(random_policy(leduc.os_game, 0))
    bad = random_policy(kuhn.os_game, 0)
    bad.action_probability_array[0] = [0.7, 0.7]
    with pytest.raises(SparringError, match="probability distributions over the legal actions"):
        meta.add(bad)
    assert len(meta) == 0


def test_a_sampled_entry_covers_the_exact_one_within_its_interval(kuhn, random_policy):
    """Ten independent estimates from 1,000 matches each: a 95% interval misses the
    exact entry at most twice (probability of more: 1.2%), and the interval's
    width is what the returns' spread says it should be."""
    a, b = random_policy(kuhn.os_game, 1), random_policy(kuhn.os_game, 2)
    meta = MetaGame(kuhn)
    meta.add(a)
    meta.add(b)
    agents = [TabularAgent(kuhn.os_game, to_table(p), name=n) for p, n in ((a, "a"), (b, "b"))]
    entries = [sampled_entry(kuhn, *agents, matches=1000, seed=seed) for seed in range(10)]
    covered = sum(abs(e.value - meta.matrix[0, 1]) <= e.half_width for e in entries)
    assert covered >= 8
    assert all(0.03 < e.half_width < 0.15 for e in entries)  # Kuhn returns spread about 1.3 a match
    flipped = sampled_entry(kuhn, agents[1], agents[0], matches=1000, seed=0)
    assert np.isclose(flipped.value, -entries[0].value, atol=0.2)  # antisymmetric, up to sampling
    with pytest.raises(SparringError, match="even number of matches"):
        sampled_entry(kuhn, *agents, matches=7, seed=0)
