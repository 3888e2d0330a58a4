"""What a sampled policy's numbers mean: each information state's answers give
its action frequencies with standard errors, a bootstrap gives the exploitability's
sampling error, and invalid answers are played two ways.

As uniform random moves (the arena's `random` rule), each invalid sample counts
1/|legal| towards every legal action. As forfeits (the default rule): an answer
that names no legal move ends the match, the offender getting the game's least
return and, the game being zero-sum, the opponent its negation
(`arena.match.forfeit_outcome`). A policy that answers invalidly with frequency q
at an information state then plays its valid answers at their frequencies and a
forfeit with probability q. OpenSpiel's best response knows no forfeit move, so
`forfeit_exploitability` walks the tree itself, as OpenSpiel's `best_response.py`
does, the forfeit a terminal of known value. Both count every invalid answer (no
retry); a forfeit is the offender's worst outcome, so the forfeit number is never
the lower of the two.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pyspiel


def sampled_distribution(counts: list[int]) -> tuple[list[float], list[float]]:
    """Probabilities from counts (legal actions..., invalid) with invalid answers
    spread uniformly, and the standard error of each.

    Each sample contributes x = 1[chose a] + 1[invalid]/L to action a's estimate, so
    p_a = mean(x) and SE = sqrt(Var(x) / n), with Var the plug-in variance. The SE is
    0 where all samples agree: with few samples, read it as a lower bound.
    """
    *chosen, invalid = counts
    n, legal = sum(counts), len(chosen)
    probs, errors = [], []
    for c in chosen:
        mean = (c + invalid / legal) / n
        second = (c + invalid / legal**2) / n
        probs.append(mean)
        errors.append(math.sqrt(max(second - mean * mean, 0.0) / n))
    return probs, errors


@dataclass
class SamplingError:
    """Bootstrap over the per-state samples (Efron 1979): each state's answers are
    resampled with replacement and the exploitability recomputed.

    Exploitability is convex in the policy, so the plug-in estimate from samples is
    biased upwards; `bias` (bootstrap mean minus the estimate) estimates by how much.
    """

    samples: int  # per information state
    resamples: int
    std: float
    interval: tuple[float, float]  # 2.5th and 97.5th percentile of the resamples
    bias: float
    invalid_rate: float


def bootstrap(os_game: pyspiel.Game, agent_pol, resamples: int, seed: int, per_player: bool) -> np.ndarray:
    """Exploitability (NashConv when not `per_player`) of `resamples` policies, each
    from every state's answers resampled multinomially from its own counts, with
    OpenSpiel's C++ NashConv. Shape [resamples]."""
    rng = np.random.default_rng(seed)
    freqs = {k: np.asarray(c, dtype=float) / agent_pol.samples for k, c in agent_pol.counts.items()}
    values = np.empty(resamples)
    for r in range(resamples):
        table = {}
        for key, legal in agent_pol.legal.items():
            probs, _ = sampled_distribution(rng.multinomial(agent_pol.samples, freqs[key]).tolist())
            table[key] = list(zip(legal, probs))
        conv = pyspiel.nash_conv(os_game, table)
        values[r] = conv / os_game.num_players() if per_player else conv
    return values


def forfeit_exploitability(os_game: pyspiel.Game, policy: dict[str, dict[int, float]],
                           forfeit: dict[str, float], least_return: float) -> float:
    """(BR_0 + BR_1) / 2 in a 2-player zero-sum game, where `policy[key]` gives each
    legal action's probability and `forfeit[key]` the rest, the chance of an invalid
    answer there; a forfeit gives the offender `least_return` (the game's least)."""
    return sum(_best_response_value(os_game, seat, policy, forfeit, -least_return) for seat in (0, 1)) / 2


def _best_response_value(os_game: pyspiel.Game, seat: int, policy: dict[str, dict[int, float]],
                         forfeit: dict[str, float], won_by_forfeit: float) -> float:
    """What `seat` earns best-responding to the other seat playing `policy`, its
    forfeits paying `won_by_forfeit` to `seat`."""
    # Each of seat's information states: its histories, with the chance and opponent
    # probability of reaching each (seat's own moves do not change it).
    histories: dict[str, list[tuple[pyspiel.State, float]]] = defaultdict(list)

    def collect(state: pyspiel.State, reach: float) -> None:
        if state.is_terminal():
            return
        if state.is_chance_node():
            for action, p in state.chance_outcomes():
                collect(state.child(action), reach * p)
        elif state.current_player() == seat:
            histories[state.information_state_string(seat)].append((state, reach))
            for action in state.legal_actions():
                collect(state.child(action), reach)
        else:
            for action, p in policy[state.information_state_string()].items():
                if p > 0:
                    collect(state.child(action), reach * p)

    values: dict[str, float] = {}
    best: dict[str, int] = {}

    def value(state: pyspiel.State) -> float:
        key = state.history_str()
        if key not in values:
            values[key] = _value(state)
        return values[key]

    def _value(state: pyspiel.State) -> float:
        if state.is_terminal():
            return state.player_return(seat)
        if state.is_chance_node():
            return sum(p * value(state.child(a)) for a, p in state.chance_outcomes())
        if state.current_player() != seat:
            info = state.information_state_string()
            played = sum(p * value(state.child(a)) for a, p in policy[info].items() if p > 0)
            return played + forfeit.get(info, 0.0) * won_by_forfeit
        info = state.information_state_string(seat)
        if info not in best:
            best[info] = max(state.legal_actions(),
                             key=lambda a: sum(r * value(h.child(a)) for h, r in histories[info]))
        return value(state.child(best[info]))

    collect(os_game.new_initial_state(), 1.0)
    return value(os_game.new_initial_state())
