"""A population's meta-strategy as one behaviour policy, and the policy of a
`MixtureAgent` read off its members.

Picking member i with probability sigma_i once, before the game, and then playing it
throughout, is the same strategy (realization-equivalent, Kuhn 1953, under perfect
recall) as playing at every information state s of player p

    pi(a | s) = sum_i sigma_i r_i(s) pi_i(a | s) / sum_i sigma_i r_i(s)

with r_i(s) player p's own reach probability of s under pi_i: the product of pi_i's
probabilities of p's own earlier actions on the way to s (Heinrich et al. 2015,
"Fictitious Self-Play in Extensive-Form Games", theorem 1). OpenSpiel's
`algorithms/policy_aggregator.py` computes exactly this by one walk of the tree per
player; it adds 1e-40 to every probability before normalising, which leaves reached
states unchanged in double precision and gives the uniform policy at states no
member reaches (never played, so any policy there is the same strategy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms import policy_aggregator

from sparring.agents.mixture import MixtureAgent
from sparring.errors import SparringError
from sparring.games.openspiel import OpenSpielGame


def mixture_policy(
    game: OpenSpielGame, members: Sequence[os_policy.TabularPolicy], weights: Sequence[float]
) -> os_policy.TabularPolicy:
    """The reach-weighted average of `members` with meta-strategy `weights` (n,), as
    one tabular policy of `game` for both seats. Weights are normalised; members of
    weight 0 are skipped."""
    sigma = np.asarray(weights, dtype=float)
    if len(members) == 0 or sigma.shape != (len(members),):
        raise SparringError(f"a mixture needs one weight per member: {len(members)} members, weights of shape {sigma.shape}")
    if not np.isfinite(sigma).all() or (sigma < 0).any() or sigma.sum() <= 0:
        raise SparringError(f"mixture weights must be non-negative and not all 0, got {sigma.tolist()}")
    kept = [(member, float(w)) for member, w in zip(members, sigma / sigma.sum()) if w > 0]
    os_game = game.os_game
    players = list(range(os_game.num_players()))
    pool = [[member for member, _ in kept] for _ in players]  # every member plays every seat
    reach = [[w for _, w in kept] for _ in players]  # each seat's reach starts at sigma
    aggregated = policy_aggregator.PolicyAggregator(os_game).aggregate(players, pool, reach)
    result = os_policy.TabularPolicy(os_game)
    for table in aggregated.policy:  # one {information state: {action: probability}} per seat
        for key, probs in table.items():
            row = result.policy_for_key(key)  # a view into action_probability_array
            row[:] = 0.0
            row[list(probs)] = list(probs.values())
    return result


def mixture_agent_policy(game: OpenSpielGame, agent: MixtureAgent, read: Callable):
    """The behaviour policy `agent` plays, as an exact `AgentPolicy`: each member
    of positive weight read by `read(member)` (`agent_policy` with the caller's
    options), then combined by `mixture_policy`. Asking the mixture itself state by
    state would average its members without their reach."""
    from sparring.eval.exploitability import AgentPolicy

    start = time.perf_counter()
    kept = [(member, label, w) for member, label, w in zip(agent.members, agent.labels, agent.weights) if w > 0]
    parts = []
    for member, label, _ in kept:
        part = read(member)
        if part.mode != "exact":
            raise SparringError(f"mixture member {label} gives no exact action distribution, so the mixture's "
                                "policy cannot be combined by reach: use scored language-model members "
                                "(mode=scored), tabular policies or cfr")
        parts.append(part)
    policy = mixture_policy(game, [p.policy for p in parts], [w for *_, w in kept])
    return AgentPolicy(agent=agent.name, game=game.spec.ref, mode="exact", policy=policy, legal=parts[0].legal,
                       act_calls=sum(p.act_calls for p in parts), decisions=sum(p.decisions for p in parts),
                       seconds=time.perf_counter() - start)
