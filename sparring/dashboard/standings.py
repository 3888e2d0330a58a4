"""Who is stronger in a run: its agents rated together with their 95% intervals and
the payoff matrix, for any run whose matches pit two or more agents against each
other in one two-player game (a tournament, an evolution's versions and references,
a play run), and a population's meta-strategy per solve (arena.ratings, as the
report computes them)."""

from __future__ import annotations

from dataclasses import dataclass

from sparring.arena.ratings import RATING_COLUMNS, rating_rows
from sparring.eval.report import rate_run
from sparring.records import MatchRecord, PopulationIteration, PopulationMember

BOOTSTRAP = 100  # resamples for the intervals on a page (the report takes more)


@dataclass(frozen=True)
class Standings:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]  # one per agent, best first
    agents: tuple[str, ...]  # the payoff matrix's order
    payoff: tuple[tuple[str, ...], ...]  # row agent's mean return against each column agent ± its half-width
    note: str | None = None  # why ratings are left out, when they are
    resamples: int = BOOTSTRAP


def read_standings(matches: list[MatchRecord]) -> Standings | None:
    """None where there is nothing to rate: one game, two seats, two agents at least."""
    ratings, notes = rate_run(matches, BOOTSTRAP)
    if ratings is None:
        return Standings(tuple(RATING_COLUMNS), (), (), (), note="; ".join(notes)) if notes else None
    agents, payoff = ratings.payoff.agents, ratings.payoff
    cells = tuple(
        tuple("" if payoff.games[i, j] == 0 else f"{payoff.mean[i, j]:+.2f} ± {payoff.ci95[i, j]:.2f}"
              for j in range(len(agents)))
        for i in range(len(agents)))
    return Standings(tuple(RATING_COLUMNS), tuple(tuple(row) for row in rating_rows(ratings, best_first=True)),
                     tuple(agents), cells, note="; ".join(notes + list(ratings.notes)) or None)


@dataclass(frozen=True)
class Solve:
    iteration: int
    weights: tuple[tuple[str, float], ...]  # member name and its weight in the meta-strategy
    exploitability: float | None


def read_solves(members: list[PopulationMember], solves: list[PopulationIteration]) -> list[Solve]:
    """A population's meta-strategy at each solve, by member name."""
    names = [m.name for m in members]
    return [Solve(s.iteration, tuple(zip(names, s.meta_strategy)), s.exploitability) for s in solves]
