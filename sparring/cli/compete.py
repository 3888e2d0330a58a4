"""Tournaments and their ratings."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from sparring.cli.app import (
    RAY_ADDRESS_HELP,
    WORKERS_HELP,
    app,
    check_voided,
    console,
    default_run_dir,
    match_runner,
    progress_bar,
)
from sparring.errors import SparringError

# ---- tournaments and ratings --------------------------------------------------------


@app.command()
def tournament(
    game: Optional[str] = typer.Option(None, "--game", "-g", help="Game reference."),
    agents: Optional[list[str]] = typer.Option(None, "--agents", "-a", help="The field, e.g. --agents smollm2 random cfr always_bet."),
    n_games: Optional[int] = typer.Option(None, "--games", "-n", help="Matches per pairing (even: seats swap evenly) [default: 100]."),
    mode: Optional[str] = typer.Option(None, help="round_robin, or gauntlet (the first agent against each other) [default: round_robin]."),
    seed: Optional[int] = typer.Option(None, help="Run seed [default: 0]."),
    out: Optional[str] = typer.Option(None, help="Run directory, new or empty [default: runs/tournament-<game>-<time>]; an existing tournament with the same plan is continued."),
    bootstrap: Optional[int] = typer.Option(None, help="Bootstrap resamples for the rating intervals [default: 1000]."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with these options; flags override it."),
    workers: Optional[int] = typer.Option(None, "--workers", help=WORKERS_HELP),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
) -> None:
    """Play every pairing of a field and rate it: payoff matrix with 95% intervals,
    Bradley-Terry (Elo) with bootstrap intervals, openskill, Nash averaging, alpha-rank."""
    from sparring.agents.registry import AgentFactory
    from sparring.arena.ratings import rate
    from sparring.arena.tournament import check_tournament, run_tournament
    from sparring.arena.workers import ByReference
    from sparring.cli.config import TournamentConfig, load_config
    from sparring.games.registry import make_game
    from sparring.store import RunStore

    if config is None and (game is None or not agents):
        raise SparringError("give a game and the field, e.g. sparring tournament --game kuhn_poker --agents cfr random")
    c = load_config(TournamentConfig, config, {"game": game, "agents": agents, "games": n_games, "mode": mode,
                                               "seed": seed, "out": out, "bootstrap": bootstrap})
    the_game = make_game(c.game)
    check_tournament(the_game.spec.players, [a.strip() for a in c.agents], c.games, c.mode)
    factory = AgentFactory(the_game)
    close_runner = None
    try:
        # on workers, each worker builds the field; here they are names only
        field = [ByReference(ref) if workers or ray_address else factory.make(ref) for ref in c.agents]
        play, close_runner = match_runner(workers, ray_address)
        run_dir = Path(c.out or default_run_dir(f"tournament-{the_game.spec.id}"))
        store = RunStore(run_dir, create=True)
        store.claim("tournament")
        with progress_bar() as progress:
            task = progress.add_task(f"{the_game.spec.name} tournament", total=None)
            result = run_tournament(
                the_game, field, c.games, seed=c.seed, mode=c.mode, store=store,
                progress=lambda done, total: progress.update(task, completed=done, total=total), play=play,
            )
        store.close()
        check_voided(result.voided, len(result.voided) + len(result.matches))
        print_ratings(rate(result.matches, the_game.spec, result.agents, bootstrap=c.bootstrap, seed=c.seed))
        console.print(f"stored in [bold]{run_dir}[/]")
    finally:
        if close_runner is not None:
            close_runner()
        factory.close()


def print_ratings(ratings) -> None:
    import math

    from sparring.arena.ratings import RATING_COLUMNS, rating_rows

    payoff = ratings.payoff
    table = Table(title="Payoff matrix: row agent's mean return against column agent (± 95% CI)")
    # Names fold onto more lines rather than end in "…": piped output is 80 columns
    # wide, and two agents may differ only past the cut (cfr(iterations=...)).
    table.add_column("agent", overflow="fold")
    for name in ratings.agents:
        table.add_column(escape(name), justify="right", overflow="fold")
    for i, name in enumerate(ratings.agents):
        cells = [
            "" if math.isnan(payoff.mean[i, j]) else f"{payoff.mean[i, j]:+.2f} ± {payoff.ci95[i, j]:.2f}"
            for j in range(len(ratings.agents))
        ]
        table.add_row(escape(name), *cells)
    console.print(table)

    table = Table(title="Ratings")
    for column in RATING_COLUMNS:
        table.add_column(column, justify="left" if column == "agent" else "right", overflow="fold")
    for row in rating_rows(ratings):
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    for note in ratings.notes:
        console.print(f"note: {escape(note)}")
