"""Fixtures of the population tests: games and tabular policies built directly in
OpenSpiel, so every check compares our code with OpenSpiel's own numbers."""

from __future__ import annotations

import numpy as np
import pytest
from open_spiel.python import policy as os_policy

from sparring.games.registry import make_game


@pytest.fixture(scope="session")
def kuhn():
    return make_game("kuhn_poker")


@pytest.fixture(scope="session")
def leduc():
    return make_game("leduc_poker")


def random_tabular_policy(os_game, seed: int) -> os_policy.TabularPolicy:
    """Every row an independent random distribution over the legal actions."""
    table = os_policy.TabularPolicy(os_game)
    weights = np.random.default_rng(seed).exponential(size=table.action_probability_array.shape)
    weights *= table.legal_actions_mask
    table.action_probability_array = weights / weights.sum(axis=1, keepdims=True)
    return table


def constant_tabular_policy(os_game, action: int) -> os_policy.TabularPolicy:
    """Probability 1 on `action` at every information state (pass or bet in Kuhn)."""
    table = os_policy.TabularPolicy(os_game)
    table.action_probability_array[:] = 0.0
    table.action_probability_array[:, action] = 1.0
    return table


@pytest.fixture
def random_policy():
    """`random_tabular_policy` as a fixture (conftest is not importable by name)."""
    return random_tabular_policy


@pytest.fixture
def constant_policy():
    return constant_tabular_policy
