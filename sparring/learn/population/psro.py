"""Policy-space response oracles (PSRO; Lanctot et al. 2017, "A Unified
Game-Theoretic Approach to Multiagent Reinforcement Learning", arXiv 1711.00832,
algorithm 1), in memory, over tabular members of a 2-player zero-sum game.

From an initial member (uniform random by default), each iteration:
1. solves the meta-game between the members for a meta-strategy sigma;
2. builds the mixture of the members under sigma as one behaviour policy;
3. records the mixture's exploitability (OpenSpiel's, exact);
4. asks the oracle for a response to the mixture and adds it as a member.

With the `nash` meta-solver and the exact best-response oracle this is the double
oracle (McMahan et al. 2003): the mixture's exploitability reaches 0 once the
population holds the support of an equilibrium. In Kuhn poker, from uniform random:
0.458, 0.417, 0.167, 0.250, 0.069, 0.104, 0.048, 0.045, then 0 after 8 responses.
It need not fall at every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyspiel
from open_spiel.python import policy as os_policy

from sparring.errors import SparringError
from sparring.eval.mixture import mixture_policy
from sparring.games.openspiel import OpenSpielGame
from sparring.learn.population.metagame import MetaGame, to_pyspiel
from sparring.learn.population.metasolvers import MetaSolver, meta_solver
from sparring.learn.population.oracles import Oracle, exact_best_response


@dataclass(frozen=True)
class PSROIteration:
    """The population after `iteration` oracle calls, solved."""

    iteration: int  # oracle calls so far; 0 for the initial population
    members: int
    meta_strategy: tuple[float, ...]  # sigma, one probability per member in the order added
    exploitability: float  # of the mixture: OpenSpiel's NashConv / 2, in the game's return units
    mixture: os_policy.TabularPolicy = field(compare=False, repr=False)  # the behaviour policy


class PSRO:
    """The population, its meta-game, and one `step` at a time, so that a caller can
    store or stop between oracle calls (which, for a learned oracle, are the slow part).
    """

    def __init__(
        self,
        game: OpenSpielGame,
        oracle: Oracle = exact_best_response,
        solver: str | MetaSolver = "nash",
        initial: os_policy.TabularPolicy | None = None,
    ):
        self.game = game
        self.oracle = oracle
        self.solver = meta_solver(solver) if isinstance(solver, str) else solver
        self.meta_game = MetaGame(game)  # refuses games that do not fit, with the reason
        self.meta_game.add(initial if initial is not None else os_policy.TabularPolicy(game.os_game))  # uniform
        self.oracle_calls = 0

    def solve(self) -> PSROIteration:
        """Meta-strategy, mixture and the mixture's exploitability for the members so far."""
        return solve_meta_game(self.game, self.meta_game, self.solver, self.oracle_calls)

    def step(self) -> PSROIteration:
        """Solve, then add the oracle's response to the mixture; returns the solved
        population as it was before the new member."""
        solved = self.solve()
        self.meta_game.add(self.oracle(self.game, solved.mixture))
        self.oracle_calls += 1
        return solved


def solve_meta_game(game: OpenSpielGame, meta_game: MetaGame, solver: MetaSolver, iteration: int) -> PSROIteration:
    """Solve the meta-game for a meta-strategy sigma, build the members' mixture under
    sigma as one behaviour policy, and measure its exploitability exactly."""
    sigma = solver(meta_game.matrix)
    mixture, exploitability = measured_mixture(game, meta_game.members, sigma)
    return PSROIteration(
        iteration=iteration,
        members=len(meta_game),
        meta_strategy=tuple(float(p) for p in sigma),
        exploitability=exploitability,
        mixture=mixture,
    )


def measured_mixture(game: OpenSpielGame, members: list[os_policy.TabularPolicy],
                     sigma) -> tuple[os_policy.TabularPolicy, float]:
    """The members' mixture under meta-strategy `sigma` as one behaviour policy, and
    its exact exploitability (OpenSpiel's C++ best response)."""
    mixture = mixture_policy(game, members, sigma)
    return mixture, float(pyspiel.exploitability(game.os_game, to_pyspiel(mixture)))


def run_psro(
    game: OpenSpielGame,
    iterations: int,
    oracle: Oracle = exact_best_response,
    solver: str | MetaSolver = "nash",
    initial: os_policy.TabularPolicy | None = None,
) -> list[PSROIteration]:
    """`iterations` oracle calls; one record per population size, iterations + 1 in all
    (the first is the initial member alone, the last has every response in it)."""
    if iterations < 0:
        raise SparringError(f"PSRO iterations must be at least 0, got {iterations}")
    psro = PSRO(game, oracle, solver, initial)
    return [psro.step() for _ in range(iterations)] + [psro.solve()]
