"""The exact meta-game between the members of a population in a 2-player zero-sum game.

PSRO (Lanctot et al. 2017, "A Unified Game-Theoretic Approach to Multiagent
Reinforcement Learning", arXiv 1711.00832) solves a normal-form game whose
strategies are the population's members. Here every member plays both seats, so the
meta-game is symmetric (Balduzzi et al. 2019, "Open-ended learning in symmetric
zero-sum games"):

    M[i, j] = 1/2 (E[u_0 | seat 0 = pi_i, seat 1 = pi_j] + E[u_1 | seat 0 = pi_j, seat 1 = pi_i])

and M = -M^T. Members are OpenSpiel `TabularPolicy`s (what
`sparring.eval.exploitability.agent_policy` reads off an agent), and every entry is
exact: OpenSpiel's C++ `expected_returns` walks the whole tree with the members'
action distributions. Measured here, one walk of Leduc takes 5 ms in C++ against
49 ms for Python's `expected_game_score.policy_value`, with the same values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyspiel
from open_spiel.python import policy as os_policy

from sparring.agents.base import Agent
from sparring.arena.match import derive_seed, play_matches, rotating_plan
from sparring.errors import SparringError
from sparring.eval.exploitability import (
    MAX_HISTORIES,
    MAX_INFO_STATES,
    information_states,
)
from sparring.games.openspiel import OpenSpielGame

_PROBABILITY_TOLERANCE = 1e-6  # how far a member's row may sum from 1


def two_player_zero_sum(
    game: OpenSpielGame, max_info_states: int = MAX_INFO_STATES, max_histories: int = MAX_HISTORIES
) -> pyspiel.Game:
    """The pyspiel game of `game`, or a SparringError saying why population play
    with tabular members cannot run in it and what to do instead.

    The checks of `information_states` (OpenSpiel rules, imperfect information,
    sequential moves, information-state strings, small enough to enumerate) and a
    2-player zero-sum game, where the symmetric meta-game and exploitability mean
    what this package says they mean.
    """
    try:
        information_states(game, max_info_states, max_histories)
    except SparringError as err:
        raise SparringError(
            "population play with tabular members enumerates every information state of a "
            f"small 2-player zero-sum imperfect-information game: {err}"
        ) from None
    os_game = game.os_game
    if os_game.num_players() != 2 or os_game.get_type().utility != pyspiel.GameType.Utility.ZERO_SUM:
        raise SparringError(
            f"{game.spec.ref} is not a 2-player zero-sum game, so its meta-game is not "
            "symmetric zero-sum and exploitability has no single value: use kuhn_poker, "
            "leduc_poker or another 2-player zero-sum OpenSpiel game"
        )
    return os_game


def check_member(os_game: pyspiel.Game, policy: os_policy.TabularPolicy) -> None:
    """Refuse a policy that is not a tabular policy of `os_game` with a probability
    distribution over the legal actions at every information state."""
    if not isinstance(policy, os_policy.TabularPolicy):
        raise SparringError(
            f"a member must be OpenSpiel's TabularPolicy, got {type(policy).__name__}: read an "
            "agent's with sparring.eval.exploitability.agent_policy(game, agent).policy"
        )
    reference = os_policy.TabularPolicy(os_game)
    if policy.state_lookup.keys() != reference.state_lookup.keys():
        raise SparringError(f"the member's information states are not those of {os_game}: build it for this game")
    probs = policy.action_probability_array
    rows = [policy.state_lookup[key] for key in reference.state_lookup]  # the same row order
    illegal = probs[rows] * (1 - reference.legal_actions_mask)
    sums = probs[rows].sum(axis=1)
    if (probs < 0).any() or (illegal > 0).any() or np.abs(sums - 1).max() > _PROBABILITY_TOLERANCE:
        raise SparringError(
            "a member's rows must be probability distributions over the legal actions "
            "(non-negative, zero on illegal actions, summing to 1)"
        )


def to_pyspiel(policy: os_policy.TabularPolicy) -> pyspiel.TabularPolicy:
    """The C++ twin of a Python tabular policy, for OpenSpiel's C++ algorithms."""
    return os_policy.python_policy_to_pyspiel_policy(policy)


def to_table(policy: os_policy.TabularPolicy) -> dict[str, dict[int, float]]:
    """A tabular policy as {information state: {legal action: probability}}."""
    return {key: {int(a): float(policy.action_probability_array[i][a])
                  for a in np.flatnonzero(policy.legal_actions_mask[i])}
            for key, i in policy.state_lookup.items()}


def from_table(os_game: pyspiel.Game, table: dict[str, dict[int, float]]) -> os_policy.TabularPolicy:
    """The tabular policy of `os_game` that `table` states at every information state."""
    policy = os_policy.TabularPolicy(os_game)
    for key, probs in table.items():
        row = policy.policy_for_key(key)  # a view into action_probability_array
        row[:] = 0.0
        row[list(probs)] = list(probs.values())
    return policy


class MetaGame:
    """The symmetric meta-game of a growing population.

    Adding the (n+1)-th member computes only its row and column: 2n + 1 tree walks,
    each giving both seats' expected returns.
    """

    def __init__(self, game: OpenSpielGame):
        self.os_game = two_player_zero_sum(game)
        self.members: list[os_policy.TabularPolicy] = []
        self._compiled: list[pyspiel.TabularPolicy] = []  # members as C++ policies
        # seat_returns[i, j, p] = E[u_p | seat 0 = pi_i, seat 1 = pi_j]; shape (n, n, 2)
        self.seat_returns = np.zeros((0, 0, 2))

    def __len__(self) -> int:
        return len(self.members)

    @property
    def matrix(self) -> np.ndarray:
        """M[i, j] = (seat_returns[i, j, 0] + seat_returns[j, i, 1]) / 2; shape (n, n)."""
        r = self.seat_returns
        return 0.5 * (r[:, :, 0] + r[:, :, 1].T)

    def add(self, policy: os_policy.TabularPolicy) -> None:
        """Add a member and its exact returns against every member, itself included."""
        check_member(self.os_game, policy)
        self.members.append(policy)
        self._compiled.append(to_pyspiel(policy))
        n = len(self.members)
        returns = np.zeros((n, n, 2))
        returns[: n - 1, : n - 1] = self.seat_returns
        for j in range(n):
            returns[n - 1, j] = self._expected_returns(n - 1, j)
            if j < n - 1:
                returns[j, n - 1] = self._expected_returns(j, n - 1)
        self.seat_returns = returns

    def _expected_returns(self, seat0: int, seat1: int) -> list[float]:
        policies = [self._compiled[seat0], self._compiled[seat1]]
        # depth_limit -1: the whole tree; True: look policies up by information state
        return pyspiel.expected_returns(self.os_game.new_initial_state(), policies, -1, True)


@dataclass(frozen=True)
class SampledEntry:
    """A meta-game entry M[i, j] estimated from play, where the tree is too large to walk."""

    value: float
    half_width: float  # of its 95% confidence interval (1.96 standard errors, normal approximation)
    matches: int


def sampled_entry(game, first: Agent, second: Agent, matches: int, seed: int, play=play_matches) -> SampledEntry:
    """M[first, second] from `matches` matches, `first` in seat 0 in the even ones
    and seat 1 in the odd ones (`rotating_plan`): the mean of its returns in each
    seat, averaged over the two seats as the exact entry is, with the standard
    error of that stratified mean. A forfeited match counts its zero-sum outcome
    (`MatchResult.scored_returns`), so M stays antisymmetric. `play`: `play_matches`,
    or Ray workers' `Workers.play` (the same matches)."""
    if matches < 4 or matches % 2:
        raise SparringError(f"a sampled entry needs an even number of matches, at least 4, got {matches}")
    results = play(rotating_plan(game, [first, second], range(matches), run_seed=seed))
    by_seat = [np.array([r.scored_returns[seat] for r in results if r.index % 2 == seat]) for seat in (0, 1)]
    value = 0.5 * (by_seat[0].mean() + by_seat[1].mean())
    error = 0.5 * math.sqrt(sum(x.var(ddof=1) / len(x) for x in by_seat))
    return SampledEntry(float(value), 1.96 * error, matches)


class SampledMetaGame:
    """The symmetric meta-game estimated from play, for games too large to walk:
    each new member plays `matches` matches against every earlier one
    (`sampled_entry`), M[j, i] = -M[i, j], and M[i, i] = 0 (a member against itself,
    averaged over the two seats, ties exactly in a zero-sum game)."""

    def __init__(self, game, matches: int, seed: int, play=play_matches):
        self.game, self.matches, self.seed, self.play = game, matches, seed, play
        self.agents: list[Agent] = []
        self.matrix = np.zeros((0, 0))
        self.half_widths = np.zeros((0, 0))  # of each entry's 95% interval

    def __len__(self) -> int:
        return len(self.agents)

    def add(self, agent: Agent) -> None:
        """Add a member: its entry against every member before it, from play."""
        n = len(self.agents) + 1
        matrix, half_widths = np.zeros((n, n)), np.zeros((n, n))
        matrix[:-1, :-1], half_widths[:-1, :-1] = self.matrix, self.half_widths
        for j, other in enumerate(self.agents):
            entry = sampled_entry(self.game, agent, other, self.matches, derive_seed("metagame", self.seed, n - 1, j),
                                  self.play)
            matrix[-1, j], matrix[j, -1] = entry.value, -entry.value
            half_widths[-1, j] = half_widths[j, -1] = entry.half_width
        self.agents.append(agent)
        self.matrix, self.half_widths = matrix, half_widths

    def restore(self, agents: list[Agent], matrix: np.ndarray, half_widths: np.ndarray) -> None:
        """The meta-game as a store kept it, with the members' agents, to grow on."""
        self.agents, self.matrix, self.half_widths = list(agents), matrix, half_widths
