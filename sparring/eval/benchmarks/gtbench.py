"""A GTBench-style suite (Duan et al. 2024, "GTBench: Uncovering the strategic
reasoning limitations of LLMs via game-theoretic evaluations", arXiv:2402.12348):
the agent plays each game against fixed opponents, in both seats, and each
(game, opponent) pair is scored by the normalized relative advantage
NRA = sum(s1 - s2) / sum(|s1| + |s2|) (`stats.nra`) with a bootstrap interval.

Opponents per game:

- perfect-information games (tic-tac-toe, connect four, nim): MCTS (OpenSpiel's
  UCT with random rollouts, 1,000 simulations) and uniform random;
- Kuhn poker: CFR+ (an approximate Nash equilibrium; MCTS needs perfect
  information) and random;
- liar's dice, the iterated prisoner's dilemma and bargaining: random only. CFR
  could play one-die liar's dice but costs ~25 s to solve and is refused for
  general-sum games; MCTS does not apply to hidden information.

GTBench also fields LLM-vs-LLM matches; here any agent reference can be given as
an opponent (`opponents=`), the defaults are the fixed references above.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from sparring.agents.base import Agent
from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule, rotating_plan, seat_order
from sparring.arena.results import outcome
from sparring.errors import SparringError
from sparring.eval.benchmarks.report import BenchmarkReport, play_scored
from sparring.eval.benchmarks.stats import (
    Estimate,
    no_valid_play,
    no_valid_play_note,
    nra,
    nra_estimate,
    stratified_bootstrap_ci,
)
from sparring.games.registry import make_game
from sparring.refs import parse_ref


@dataclass(frozen=True)
class SuiteGame:
    ref: str  # game reference for make_game
    opponents: tuple[str, ...]  # agent references


GTBENCH_GAMES: tuple[SuiteGame, ...] = (
    SuiteGame("tictactoe", ("mcts", "random")),
    SuiteGame("connect_four", ("mcts", "random")),
    SuiteGame("openspiel:nim", ("mcts", "random")),
    SuiteGame("kuhn_poker", ("cfr", "random")),
    SuiteGame("liars_dice", ("random",)),
    SuiteGame("matrix(preset=prisoners_dilemma,rounds=10)", ("random",)),
    SuiteGame("bargaining", ("random",)),
)

# Agents that are built for one game (they read its OpenSpiel rules); any other
# reference is built once and plays every game, so a model loads once.
_GAME_BOUND_KINDS = ("cfr", "mcts", "perfect")


def run_gtbench(
    agent: Agent | str,
    games: int = 50,
    seed: int = 0,
    only: Sequence[str] | None = None,
    opponents: Sequence[str] | None = None,
    rule: InvalidMoveRule = InvalidMoveRule(),
    concurrency: int = 64,
    resamples: int = 1000,
) -> BenchmarkReport:
    """Play `games` matches per (game, opponent), the agent in seat 0 in even
    matches and seat 1 in odd ones, and score each pair by NRA.

    `only`: game references to keep (default all of `GTBENCH_GAMES`); `opponents`:
    opponent references replacing each game's defaults.
    """
    # long: one loop over the suite whose item rows and tallies read best in one place
    if games < 1:
        raise SparringError(f"games must be >= 1, got {games}")
    suite = list(GTBENCH_GAMES)
    if only is not None:
        known = {g.ref: g for g in suite}
        missing = [r for r in only if r not in known]
        if missing:
            raise SparringError(f"not in the suite: {missing}; games: {', '.join(known)}")
        suite = [known[r] for r in only]
    rng = random.Random(f"gtbench:{seed}")
    shared: Agent | None = agent if not isinstance(agent, str) else None
    cells: dict[tuple[str, str], list[tuple[float, float]]] = {}
    cell_forfeits: dict[tuple[str, str], int] = {}
    items, invalid, forfeits, void_notes = [], 0, 0, []
    factories: list[AgentFactory] = []  # closed at the end: they own loaded models
    try:
        for suite_game in suite:
            game = make_game(suite_game.ref)
            factory = AgentFactory(game)
            factories.append(factory)
            if shared is None and parse_ref(agent)[0] in _GAME_BOUND_KINDS:
                player = factory.make(agent)
            else:
                shared = shared or factory.make(agent)
                player = shared
            for opponent_ref in opponents or suite_game.opponents:
                opponent = factory.make(opponent_ref)
                played, notes = play_scored(rotating_plan(game, [player, opponent], range(games), seed), rule,
                                            concurrency)
                void_notes += [f"{suite_game.ref} vs {opponent_ref}: {note}" for note in notes]
                results = list(played.values())
                pairs = []
                for r in results:
                    seat = seat_order(2, r.index).index(0)  # the player's seat in the plan (names may be equal)
                    scored = r.scored_returns  # a forfeit as the game's loss, not the training penalty
                    s1, s2 = scored[seat], scored[1 - seat]
                    pairs.append((s1, s2))
                    invalid += r.record.invalid[seat]
                    forfeits += r.forfeit_by == seat
                    items.append({
                        "game": suite_game.ref, "opponent": opponent_ref, "match": r.index,
                        "seat": seat, "agent_return": s1, "opponent_return": s2,
                        "outcome": outcome(scored, seat), "forfeit": r.forfeit_by == seat,
                    })
                cells[(suite_game.ref, opponent_ref)] = pairs
                cell_forfeits[(suite_game.ref, opponent_ref)] = sum(item["forfeit"] for item in items[-len(pairs):])
    finally:
        for factory in factories:
            factory.close()
    breakdowns: dict[str, dict[str, Estimate]] = {}
    for key, pairs in cells.items():
        played = cell_forfeits[key] < len(pairs)  # a cell the agent forfeited throughout has no score
        breakdowns.setdefault(key[0], {})[f"vs {key[1]}"] = (
            nra_estimate(pairs, rng, resamples) if played else no_valid_play(len(pairs)))
    notes = ["overall: unweighted mean of the per-(game, opponent) NRA, stratified bootstrap; "
             "a forfeit counts as the game's loss, and a pairing forfeited in every match shows n/a"]
    matches = sum(len(pairs) for pairs in cells.values())
    if forfeits == matches:
        notes.insert(0, no_valid_play_note(forfeits))
    notes += void_notes
    return BenchmarkReport(
        benchmark="gtbench", agent=getattr(shared, "name", None) or str(agent),
        metric="NRA = sum(s1-s2)/sum(|s1|+|s2|)",
        overall=_mean_nra(list(cells.values()), rng, resamples) if forfeits < matches else no_valid_play(matches),
        breakdowns=breakdowns, invalid=invalid, forfeits=forfeits, items=items, notes=notes,
    )


def _mean_nra(cells: list[list[tuple[float, float]]], rng: random.Random, resamples: int) -> Estimate:
    """Mean NRA over (game, opponent) cells, each weighted equally (games have
    different utility scales), with a bootstrap that resamples matches within each
    cell (stratified), so every resample keeps every cell."""
    def mean_nra(groups: list[list[tuple[float, float]]]) -> float:
        return sum(nra(g) for g in groups) / len(groups)

    low, high = stratified_bootstrap_ci(cells, mean_nra, rng, resamples)
    return Estimate(mean_nra(cells), low, high, sum(len(c) for c in cells))
