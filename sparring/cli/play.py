"""Commands that play and show runs: games, agents, play, show, export."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sparring.cli.app import app, console, default_run_dir, progress_bar
from sparring.errors import SparringError


# ---- games and agents ------------------------------------------------------------


@app.command()
def games() -> None:
    """List every registered game with its spec."""
    from sparring.games.registry import all_specs

    table = Table(title="Games (any OpenSpiel game also plays as openspiel:NAME(params))")
    table.add_column("id", no_wrap=True)
    for column in ("v", "name", "seats", "information", "chance", "sum", "returns", "turns"):
        table.add_column(column)
    for s in all_specs():
        table.add_row(
            s.id, str(s.version), s.name, str(s.players),
            "perfect" if s.perfect_information else "imperfect",
            "yes" if s.chance else "no", "zero" if s.zero_sum else "general",
            f"{s.utility_range[0]:g}..{s.utility_range[1]:g}", f"<={s.max_length}",
        )
    console.print(table)


@app.command()
def agents() -> None:
    """List the kinds of agent and their options."""
    from sparring.agents.registry import AGENT_KINDS

    table = Table(title="Agents (write options as name(key=value,...))")
    table.add_column("agent")
    table.add_column("what it is")
    for kind, text in AGENT_KINDS.items():
        table.add_row(kind, text)
    console.print(table)


# ---- play --------------------------------------------------------------------------


@app.command()
def play(
    game: Optional[str] = typer.Argument(None, help="Game reference, e.g. tictactoe, matrix(preset=stag_hunt), openspiel:goofspiel(num_cards=4)."),
    players: Optional[list[str]] = typer.Option(None, "--players", "-p", help="One agent per seat, e.g. --players smollm2 random."),
    n_games: Optional[int] = typer.Option(None, "--games", "-n", help="Number of matches [default: 16]."),
    seed: Optional[int] = typer.Option(None, help="Run seed [default: 0]."),
    out: Optional[str] = typer.Option(None, help="Run directory [default: runs/<game>-<time>]; an existing run with the same config is continued."),
    concurrency: Optional[int] = typer.Option(None, help="Matches played at once in lockstep [default: 32]."),
    retries: Optional[int] = typer.Option(None, help="Times an invalid answer is retried with feedback [default: 1]."),
    on_invalid: Optional[str] = typer.Option(None, help="After the retries: forfeit or random [default: forfeit]."),
    penalty: Optional[float] = typer.Option(None, help="The forfeiting player's return [default: -1]."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with these options; flags override it."),
) -> None:
    """Play matches between agents and store every turn.

    Players take options as name(key=value,...): smollm2(mode=scored,temperature=0.5),
    cfr(iterations=20000), mcts(simulations=200), hf(path=DIR), openai(model=M,base_url=URL).
    """
    from sparring.cli.config import PlayConfig, load_config

    invalid = {k: v for k, v in (("retries", retries), ("then", on_invalid), ("penalty", penalty)) if v is not None}
    overrides = {"game": game, "players": players, "games": n_games, "seed": seed, "out": out, "concurrency": concurrency}
    if invalid:
        overrides["invalid"] = invalid
    if config is None and (game is None or not players):
        raise SparringError("give a game and players, e.g. sparring play tictactoe --players smollm2 random")
    run_play(load_config(PlayConfig, config, overrides))


def run_play(config) -> Path:
    """Play a configured run into its store and print its results; returns the run dir."""
    from sparring.agents.registry import AgentFactory
    from sparring.arena.match import play_matches, rotating_plan
    from sparring.cli.config import config_dict
    from sparring.games.registry import make_game
    from sparring.store import RunStore

    game = make_game(config.game)
    factory = AgentFactory(game)
    try:
        seat_agents = [factory.make(ref) for ref in config.players]
        if len(seat_agents) != game.spec.players:
            raise SparringError(f"{game.spec.name} needs {game.spec.players} players, got {len(seat_agents)}: give one --players entry per seat")
        run_dir = Path(config.out or default_run_dir(game.spec.id))
        store = RunStore(run_dir, create=True)
        store.start(config_dict(config))
        done = store.finished_indices()
        todo = [i for i in range(config.games) if i not in done]
        if done:
            console.print(f"continuing {run_dir}: {len(done)} of {config.games} matches already stored")
        interactive = any(ref.strip() == "human" for ref in config.players)
        with progress_bar(disable=interactive or not todo) as progress:
            task = progress.add_task(game.spec.name, total=config.games, completed=len(done))

            def on_match_end(result):
                store.write_match(result)
                progress.advance(task)

            try:
                plan = rotating_plan(game, seat_agents, todo, config.seed)
                play_matches(plan, config.invalid, config.concurrency, on_match_end)
            except KeyboardInterrupt:
                stored = len(store.finished_indices())
                console.print(f"\ninterrupted: {stored} finished matches are stored in {run_dir}; run the same command to continue")
                raise typer.Exit(130)
        stats = {a.name: a.backend.stats.as_dict() for a in seat_agents if hasattr(getattr(a, "backend", None), "stats")}
        if stats:
            store.set_meta("backend_stats", stats)
        print_results(store, stats)
        console.print(f"stored in [bold]{run_dir}[/]; replay a match with: sparring show {run_dir} --match 0")
        store.close()
        return run_dir
    finally:
        factory.close()


def print_results(store, backend_stats: dict | None = None) -> None:
    from sparring.arena.results import summarize

    matches = store.matches()
    if not matches:
        console.print("no finished matches yet")
        return
    table = Table(title=f"{matches[0].game}: {len(matches)} matches")
    for column in ("agent", "games", "win", "draw", "loss", "mean return (95% CI)", "invalid answers", "forfeits"):
        table.add_column(column, justify="left" if column == "agent" else "right")
    answers_by_agent = store.answers_by_agent()
    for s in summarize(matches):
        mean, half = s.mean_return
        answers = answers_by_agent.get(s.agent, (0, 0))[0]
        rate = f" ({s.invalid / answers:.0%})" if answers else ""
        table.add_row(
            escape(s.agent), str(s.games), str(s.wins), str(s.draws), str(s.losses),
            f"{mean:+.3f} ± {half:.3f}", f"{s.invalid}{rate}", str(s.forfeits),
        )
    console.print(table)
    for name, stats in (backend_stats or {}).items():
        console.print(f"backend {escape(name)}: {escape(str(stats))}")


# ---- inspect and export ------------------------------------------------------------


@app.command()
def show(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    match: Optional[int] = typer.Option(None, "--match", "-m", help="Replay this match: views, model text, actions."),
    views: bool = typer.Option(True, help="Show each player's view before their move."),
) -> None:
    """Summarise a run, or replay one of its matches."""
    from sparring.store import RunStore

    store = RunStore(run_dir)
    if match is None:
        print_results(store, store.get_meta("backend_stats"))
        return
    info = store.match(match)
    if info is None:
        indices = sorted(store.finished_indices())
        hint = f"stored matches are {indices[0]}..{indices[-1]}" if indices else "the run has no finished match"
        raise SparringError(f"no match {match} in {run_dir}: {hint}")
    console.print(Panel(f"match {match} of {escape(info.game)}, seed {info.seed}\nseats: "
                        + ", ".join(f"{i + 1}: {escape(a)}" for i, a in enumerate(info.seats))))
    for turn in store.turns(match):
        console.print(Text(f"Player {turn.seat + 1} ({turn.agent})", style="bold"))
        if views and turn.view:
            console.print(Text(turn.view, style="dim"))
        if turn.choice.completion is not None:
            console.print(Text("model: ", style="cyan") + Text(turn.choice.completion))
        if turn.choice.message:
            console.print(Text("message: ", style="magenta") + Text(turn.choice.message))
        if turn.valid:
            tag = " (random move after invalid answers)" if turn.forced else ""
            console.print(Text(f"-> plays {turn.action_name}{tag}", style="green"))
        else:
            console.print(Text(f"-> invalid: {turn.reason}", style="red"))
        console.print()
    returns = ", ".join(f"Player {i + 1}: {r:+g}" for i, r in enumerate(info.returns))
    forfeit = f" (Player {info.forfeit_by + 1} forfeited)" if info.forfeit_by is not None else ""
    console.print(Panel(f"returns: {returns}{forfeit}"))


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    format: str = typer.Option("jsonl", help="jsonl (one match per line) or parquet (one turn per row)."),
    to: Optional[Path] = typer.Option(None, help="Output file [default: RUN_DIR/matches.jsonl or turns.parquet]."),
) -> None:
    """Export a run's matches and turns."""
    from sparring.store import RunStore

    store = RunStore(run_dir)
    if format == "jsonl":
        path = to or run_dir / "matches.jsonl"
        n = store.export_jsonl(path)
        console.print(f"wrote {n} matches to {path}")
    elif format == "parquet":
        path = to or run_dir / "turns.parquet"
        n = store.export_parquet(path)
        console.print(f"wrote {n} turns to {path}")
    else:
        raise SparringError(f"format '{format}' unknown: use jsonl or parquet")
