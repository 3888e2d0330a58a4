"""Meta-solvers against game theory: rock-paper-scissors and a weighted version
whose equilibrium is known in closed form, and a matrix with a dominant member."""

from __future__ import annotations

import numpy as np
import pytest

from sparring.errors import SparringError
from sparring.learn.population.metasolvers import (
    META_SOLVERS,
    alpha_rank,
    meta_solver,
    nash,
    prd,
    uniform,
)

RPS = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=float)


def weighted_rps(a: float, b: float, c: float) -> np.ndarray:
    """Paper beats rock by b, scissors beats paper by a, rock beats scissors by c.
    M p = 0 gives the unique equilibrium p = (a, c, b) / (a + b + c)."""
    return np.array([[0, -b, c], [b, 0, -a], [-c, a, 0]], dtype=float)


# Member 0 beats both others; 1 beats 2.
DOMINANT = np.array([[0, 1, 1], [-1, 0, 0.5], [-1, -0.5, 0]], dtype=float)


def test_nash_of_rock_paper_scissors_is_uniform():
    assert nash(RPS) == pytest.approx(np.full(3, 1 / 3), abs=1e-6)


def test_nash_of_weighted_rps_is_the_closed_form():
    assert nash(weighted_rps(1, 2, 3)) == pytest.approx(np.array([1, 3, 2]) / 6, abs=1e-6)


def test_prd_converges_near_nash():
    """PRD's trajectory average (Lanctot et al. 2017, appendix A) with OpenSpiel's
    PSRO settings: the uniform start is already RPS's equilibrium; in weighted RPS
    the dynamics cycle around the equilibrium and the average closes in on it."""
    assert prd(RPS, iterations=1_000) == pytest.approx(np.full(3, 1 / 3), abs=1e-9)
    sigma = prd(weighted_rps(1, 2, 3))
    assert sigma.sum() == pytest.approx(1.0)
    assert sigma == pytest.approx(np.array([1, 3, 2]) / 6, abs=0.02)
    assert np.abs(sigma - 1 / 3).max() > 0.1  # it moved away from its uniform start


def test_alpha_rank_puts_the_mass_on_a_dominant_member():
    assert alpha_rank(DOMINANT)[0] > 0.99
    assert alpha_rank(RPS) == pytest.approx(np.full(3, 1 / 3), abs=1e-6)  # a cycle: no member favoured


def test_uniform_is_uniform():
    assert uniform(DOMINANT) == pytest.approx(np.full(3, 1 / 3))


def test_registry_names_the_known_solvers():
    assert meta_solver("nash") is nash and set(META_SOLVERS) == {"nash", "alpha_rank", "uniform", "prd"}
    with pytest.raises(SparringError, match="unknown meta-solver 'fp'.*nash, alpha_rank, uniform, prd"):
        meta_solver("fp")


@pytest.mark.parametrize("name", list(META_SOLVERS))
def test_every_solver_refuses_a_non_square_matrix(name):
    with pytest.raises(SparringError, match=r"square matrix, got shape \(2, 3\)"):
        META_SOLVERS[name](np.zeros((2, 3)))
