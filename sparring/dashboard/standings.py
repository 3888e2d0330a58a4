"""Who is stronger in a run: its agents rated together with their 95% intervals and
the payoff matrix, for any run whose matches pit two or more agents against each
other in one two-player game (a tournament, an evolution's versions and references,
a play run), and a population's meta-strategy per solve (arena.ratings, as the
report computes them)."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import Any

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
    heatmap: dict[str, Any] | None = None  # the payoff matrix as a Plotly heat map


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
    played = [[payoff.games[i, j] > 0 for j in range(len(agents))] for i in range(len(agents))]
    figure = heatmap("payoff", "mean return of the row agent against the column agent", list(agents),
                     [[float(payoff.mean[i, j]) if played[i][j] else None for j in range(len(agents))]
                      for i in range(len(agents))],
                     [[float(payoff.ci95[i, j]) if played[i][j] else None for j in range(len(agents))]
                      for i in range(len(agents))])
    return Standings(tuple(RATING_COLUMNS), tuple(tuple(row) for row in rating_rows(ratings, best_first=True)),
                     tuple(agents), cells, note="; ".join(notes + list(ratings.notes)) or None, heatmap=figure)


def heatmap(chart_id: str, title: str, agents: list[str], mean: list[list[float | None]],
            half_width: list[list[float | None]]) -> dict[str, Any]:
    """A square payoff matrix as a Plotly heat map: red where the row agent loses, blue
    where it wins, white at zero; each cell's text gives the mean ± its 95% half-width
    (unplayed cells are blank). Names are escaped: Plotly reads some HTML in labels."""
    names = [html.escape(a) for a in agents]
    text = [["" if m is None else f"{m:+.2f}" + ("" if h is None or not math.isfinite(h) else f" ± {h:.2f}")
             for m, h in zip(row, widths)] for row, widths in zip(mean, half_width)]
    trace = {"type": "heatmap", "z": mean, "x": names, "y": names, "text": text, "texttemplate": "%{text}",
             "hovertemplate": "%{y} against %{x}: %{text}<extra></extra>", "colorscale": "RdBu", "zmid": 0,
             "xgap": 1, "ygap": 1}
    size = 120 + 48 * len(agents)
    layout = {"title": {"text": html.escape(title), "font": {"size": 14}, "x": 0.01}, "height": size + 60,
              "xaxis": {"title": {"text": "opponent"}, "side": "bottom"},
              "yaxis": {"title": {"text": "agent"}, "autorange": "reversed"},
              "margin": {"l": 140, "r": 20, "t": 40, "b": 90}}
    return {"id": f"heatmap-{chart_id}", "data": [trace], "layout": layout}


@dataclass(frozen=True)
class Solve:
    iteration: int
    weights: tuple[tuple[str, float], ...]  # member name and its weight in the meta-strategy
    exploitability: float | None


def read_solves(members: list[PopulationMember], solves: list[PopulationIteration]) -> list[Solve]:
    """A population's meta-strategy at each solve, by member name."""
    names = [m.name for m in members]
    return [Solve(s.iteration, tuple(zip(names, s.meta_strategy)), s.exploitability) for s in solves]


def read_metagame(members: list[PopulationMember], payoffs: dict[tuple[int, int], float],
                  half_widths: dict[tuple[int, int], float]) -> dict[str, Any] | None:
    """A population's meta-game (each member's expected return against each other,
    exact or sampled with its half-width) as a heat map; None before two members."""
    if len(members) < 2:
        return None
    n = range(len(members))
    return heatmap("metagame", "meta-game: the row member's expected return against the column member",
                   [m.name for m in members], [[payoffs.get((i, j)) for j in n] for i in n],
                   [[half_widths.get((i, j)) for j in n] for i in n])
