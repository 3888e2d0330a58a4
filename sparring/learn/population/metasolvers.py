"""Meta-solvers: from the symmetric meta-game matrix M (n, n), M = -M^T, to the
meta-strategy sigma (n,), the probability of each member in the population's mixture.

The four of PSRO (Lanctot et al. 2017, arXiv 1711.00832, section 3 and appendix A;
OpenSpiel's `psro_v2/meta_strategies.py`):

- `nash`: the maximum-entropy Nash equilibrium of M (`sparring.arena.ratings.maxent_nash`,
  the LP the ratings use), i.e. double oracle (McMahan et al. 2003);
- `alpha_rank`: the stationary distribution of alpha-rank's evolutionary dynamics
  (Omidshafiei et al. 2019; Muller et al. 2020 use it as PSRO's meta-solver);
- `uniform`: every member alike, i.e. fictitious play over the population
  (Brown 1951; Heinrich et al. 2015);
- `prd`: projected replicator dynamics, replicator dynamics kept at least `gamma`
  away from the simplex's faces so that every member keeps being played.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from open_spiel.python.algorithms import projected_replicator_dynamics

from sparring.arena import ratings
from sparring.errors import SparringError

MetaSolver = Callable[[np.ndarray], np.ndarray]

# OpenSpiel's PSRO example (open_spiel/python/examples/psro_v2_example.py) runs PRD
# with these; the step size is projected_replicator_dynamics.py's default.
PRD_ITERATIONS = 50_000
PRD_GAMMA = 1e-10
PRD_DT = 1e-3


def _square(payoff: np.ndarray) -> np.ndarray:
    payoff = np.asarray(payoff, dtype=float)
    if payoff.ndim != 2 or payoff.shape[0] != payoff.shape[1] or payoff.shape[0] == 0:
        raise SparringError(f"a meta-game must be a non-empty square matrix, got shape {payoff.shape}")
    return payoff


def nash(payoff: np.ndarray) -> np.ndarray:
    """The maximum-entropy Nash mixture of M (Balduzzi et al. 2018), unique even
    when M has many equilibria, so PSRO's run does not depend on an LP solver's
    choice among them."""
    return ratings.maxent_nash(_square(payoff))


def alpha_rank(payoff: np.ndarray, alpha: float = 100.0, population: int = 50) -> np.ndarray:
    """alpha-rank's stationary distribution over the members: the wrapper the ratings
    use (`sparring.arena.ratings.alpha_rank`, around OpenSpiel's
    `egt.alpharank.compute`, single population since M is symmetric), which also
    silences the overflow of strong selection and clips the eigen-solver's -1e-17s.

    alpha is the selection intensity per unit of M (here, of the game's return)."""
    return ratings.alpha_rank(_square(payoff), alpha=alpha, population=population)


def uniform(payoff: np.ndarray) -> np.ndarray:
    """Every member with probability 1/n: fictitious play's average."""
    n = _square(payoff).shape[0]
    return np.full(n, 1.0 / n)


def prd(payoff: np.ndarray, iterations: int = PRD_ITERATIONS, gamma: float = PRD_GAMMA, dt: float = PRD_DT) -> np.ndarray:
    """Projected replicator dynamics (Lanctot et al. 2017, appendix A), OpenSpiel's
    `algorithms/projected_replicator_dynamics.py`: from the uniform mixture, Euler
    steps of dt on x_i' = x_i ((M y)_i - x^T M y), each projected onto the simplex
    with every entry >= gamma; the answer is the average over the trajectory.

    M is one seat's payoffs and -M the other's; started alike, both seats' mixtures
    stay equal because M = -M^T, so the first is the answer. Costs about 35 us a
    step in Python: 1.8 s for the default 50,000 on a 3x3 matrix.
    """
    payoff = _square(payoff)
    strategies = projected_replicator_dynamics.projected_replicator_dynamics(
        [payoff, -payoff], prd_iterations=iterations, prd_dt=dt, prd_gamma=gamma
    )
    sigma = np.clip(strategies[0], 0.0, None)
    return sigma / sigma.sum()


META_SOLVERS: dict[str, MetaSolver] = {"nash": nash, "alpha_rank": alpha_rank, "uniform": uniform, "prd": prd}


def meta_solver(name: str) -> MetaSolver:
    """The meta-solver registered under `name`."""
    if name not in META_SOLVERS:
        raise SparringError(f"unknown meta-solver '{name}': choose one of {', '.join(META_SOLVERS)}")
    return META_SOLVERS[name]
