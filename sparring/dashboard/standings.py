"""Who is stronger in a run: its agents rated together with their 95% intervals and
the payoff matrix, for any run whose matches pit two or more agents against each
other in one two-player game (a tournament, an evolution's versions and references,
a play run), and a population's meta-strategy per solve (arena.ratings, as the
report computes them)."""

from __future__ import annotations

from dataclasses import dataclass

from sparring.arena.ratings import RATING_COLUMNS, rate, rating_rows
from sparring.errors import SparringError
from sparring.games.registry import make_game, split_version
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
    games = {m.game for m in matches}
    if len(games) != 1 or any(len(m.seats) != 2 for m in matches):
        return None
    agents = list(dict.fromkeys(a for m in matches for a in m.seats))
    if len(agents) < 2:
        return None
    try:
        spec = make_game(split_version(next(iter(games)))[0]).spec
        ratings = rate(matches, spec, agents, bootstrap=BOOTSTRAP, seed=0)
    except SparringError as exc:
        return Standings(tuple(RATING_COLUMNS), (), tuple(agents), (), note=f"ratings left out: {exc}")
    payoff = ratings.payoff
    cells = tuple(
        tuple("" if payoff.games[i, j] == 0 else f"{payoff.mean[i, j]:+.2f} ± {payoff.ci95[i, j]:.2f}"
              for j in range(len(agents)))
        for i in range(len(agents)))
    return Standings(tuple(RATING_COLUMNS), tuple(tuple(row) for row in rating_rows(ratings, best_first=True)),
                     tuple(agents), cells, note="; ".join(ratings.notes) or None)


@dataclass(frozen=True)
class Solve:
    iteration: int
    weights: tuple[tuple[str, float], ...]  # member name and its weight in the meta-strategy
    exploitability: float | None


def read_solves(members: list[PopulationMember], solves: list[PopulationIteration]) -> list[Solve]:
    """A population's meta-strategy at each solve, by member name."""
    names = [m.name for m in members]
    return [Solve(s.iteration, tuple(zip(names, s.meta_strategy)), s.exploitability) for s in solves]
