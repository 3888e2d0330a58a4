"""Tournaments and their ratings."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from sparring.cli.app import app, console, default_run_dir, progress_bar


# ---- tournaments and ratings --------------------------------------------------------


@app.command()
def tournament(
    game: str = typer.Option(..., "--game", "-g", help="Game reference."),
    agents: list[str] = typer.Option(..., "--agents", "-a", help="The field, e.g. --agents smollm2 random cfr always_bet."),
    n_games: int = typer.Option(100, "--games", "-n", help="Matches per pairing (even: seats swap evenly)."),
    mode: str = typer.Option("round_robin", help="round_robin, or gauntlet (the first agent against each other)."),
    seed: int = typer.Option(0, help="Run seed."),
    out: Optional[str] = typer.Option(None, help="Run directory [default: runs/tournament-<game>-<time>]; an existing one with the same plan is continued."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for the rating intervals."),
) -> None:
    """Play every pairing of a field and rate it: payoff matrix with 95% intervals,
    Bradley-Terry (Elo) with bootstrap intervals, openskill, Nash averaging, alpha-rank."""
    from sparring.agents.registry import AgentFactory
    from sparring.arena.ratings import rate
    from sparring.arena.tournament import check_tournament, run_tournament
    from sparring.games.registry import make_game
    from sparring.store import RunStore

    the_game = make_game(game)
    check_tournament(the_game.spec.players, [a.strip() for a in agents], n_games, mode)
    factory = AgentFactory(the_game)
    try:
        field = [factory.make(ref) for ref in agents]
        run_dir = Path(out or default_run_dir(f"tournament-{the_game.spec.id}"))
        store = RunStore(run_dir, create=True)
        with progress_bar() as progress:
            task = progress.add_task(f"{the_game.spec.name} tournament", total=None)
            result = run_tournament(
                the_game, field, n_games, seed=seed, mode=mode, store=store,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        print_ratings(rate(result.matches, the_game.spec, result.agents, bootstrap=bootstrap, seed=seed))
        console.print(f"stored in [bold]{run_dir}[/]")
        store.close()
    finally:
        factory.close()


def print_ratings(ratings) -> None:
    import math

    from sparring.arena.ratings import RATING_COLUMNS, rating_rows

    payoff = ratings.payoff
    table = Table(title="Payoff matrix: row agent's mean return against column agent (± 95% CI)")
    table.add_column("agent")
    for name in ratings.agents:
        table.add_column(escape(name), justify="right")
    for i, name in enumerate(ratings.agents):
        cells = [
            "" if math.isnan(payoff.mean[i, j]) else f"{payoff.mean[i, j]:+.2f} ± {payoff.ci95[i, j]:.2f}"
            for j in range(len(ratings.agents))
        ]
        table.add_row(escape(name), *cells)
    console.print(table)

    table = Table(title="Ratings")
    for column in RATING_COLUMNS:
        table.add_column(column, justify="left" if column == "agent" else "right")
    for row in rating_rows(ratings):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    for note in ratings.notes:
        console.print(f"note: {escape(note)}")
