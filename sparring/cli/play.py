"""Commands that play and show runs: games, agents, play, show, export."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sparring.cli.app import (
    RAY_ADDRESS_HELP,
    WORKERS_HELP,
    app,
    check_output_file,
    check_voided,
    console,
    default_run_dir,
    match_runner,
    progress_bar,
)
from sparring.display import visible
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
    out: Optional[str] = typer.Option(None, help="Run directory, new or empty [default: runs/<game>-<time>]; an existing play run with the same config is continued, or extended by more --games."),
    concurrency: Optional[int] = typer.Option(None, help="Matches played at once in lockstep [default: 32]."),
    retries: Optional[int] = typer.Option(None, help="Times an invalid answer is retried with feedback [default: 1]."),
    on_invalid: Optional[str] = typer.Option(None, help="After the retries: forfeit or random [default: forfeit]."),
    penalty: Optional[float] = typer.Option(None, help="The training reward of a player who forfeits (shaping only: results and ratings score a forfeit as the game's loss) [default: -1]."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with these options (the flags' names, or PlayConfig's fields: retries or invalid.retries); flags override it."),
    workers: Optional[int] = typer.Option(None, "--workers", help=WORKERS_HELP),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help=RAY_ADDRESS_HELP),
) -> None:
    """Play matches between agents and store every turn.

    Players take options as name(key=value,...): smollm2(mode=scored,temperature=0.5),
    cfr(iterations=20000), mcts(simulations=200), hf(path=DIR), openai(model=M,base_url=URL).
    """
    from sparring.cli.config import PlayConfig, load_config

    overrides = {"game": game, "players": players, "games": n_games, "seed": seed, "out": out,
                 "concurrency": concurrency, "retries": retries, "on_invalid": on_invalid, "penalty": penalty}
    if config is None and (game is None or not players):
        raise SparringError("give a game and players, e.g. sparring play tictactoe --players smollm2 random")
    run_play(load_config(PlayConfig, config, overrides), workers, ray_address)


def run_play(config, workers: int | None = None, ray_address: str | None = None) -> Path:
    """Play a configured run into its store and print its results; returns the run dir.
    With `workers` or a `ray_address`, Ray workers play the matches (`match_runner`)."""
    from sparring.agents.registry import AgentFactory
    from sparring.arena.match import rotating_plan
    from sparring.arena.workers import ByReference
    from sparring.cli.config import config_dict
    from sparring.games.registry import make_game
    from sparring.store import RunStore

    game = make_game(config.game)
    factory = AgentFactory(game)
    close_runner = None
    try:
        remote = bool(workers or ray_address)  # the workers build the agents
        seat_agents = [ByReference(ref) if remote else factory.make(ref) for ref in config.players]
        if len(seat_agents) != game.spec.players:
            raise SparringError(f"{game.spec.name} needs {game.spec.players} players, got {len(seat_agents)}: give one --players entry per seat")
        play_matches, close_runner = match_runner(workers, ray_address)
        run_dir = Path(config.out or default_run_dir(game.spec.id))
        store = RunStore(run_dir, create=True)
        store.start(config_dict(config), kind="play", growable=("games",))  # more games extend the run
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

            voided: dict[int, str] = {}
            try:
                plan = rotating_plan(game, seat_agents, todo, config.seed)
                play_matches(plan, config.invalid, config.concurrency, on_match_end, on_match_void=voided.__setitem__)
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
        check_voided(voided, len(todo))
        return run_dir
    finally:
        if close_runner is not None:
            close_runner()
        factory.close()


def print_results(store, backend_stats: dict | None = None) -> None:
    """Each agent's results; one row per seat when an agent plays itself, since
    pooled seats of a zero-sum game cancel (cfr against cfr would read +0.000)."""
    from sparring.arena.results import self_play, summarize

    matches = store.matches()
    if not matches:
        console.print("no finished matches yet")
        return
    by_seat = self_play(matches)
    table = Table(title=f"{matches[0].game}: {len(matches)} matches" + (", each seat apart" if by_seat else ""))
    for column in ("agent", "games", "win", "draw", "loss", "mean return (95% CI)", "invalid answers", "forfeits"):
        # fold, never cut: piped output is 80 columns and names may differ only at their ends
        table.add_column(column, justify="left" if column == "agent" else "right", overflow="fold")
    answers_by_agent = store.answers_by_agent()
    for s in summarize(matches, by_seat=by_seat):
        mean, half = s.mean_return
        answers = answers_by_agent.get(s.agent, (0, 0))[0]
        rate = f" ({s.invalid / answers:.0%})" if answers and s.seat is None else ""  # answers are per agent
        name = s.agent if s.seat is None else f"{s.agent} (seat {s.seat + 1})"
        interval = f"± {half:.3f}" if s.games >= 2 else "(n<2)"
        table.add_row(
            escape(name), str(s.games), str(s.wins), str(s.draws), str(s.losses),
            f"{mean:+.3f} {interval}", f"{s.invalid}{rate}", str(s.forfeits),
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
    playbook: Optional[int] = typer.Option(None, "--playbook", "-p", help="An evolution run's version N: its rules, the diff from its parent, the evidence."),
) -> None:
    """Summarise a run (results, a tournament's ratings, benchmark scores), replay
    one of its matches, or show an evolved playbook version."""
    from sparring.store import RunStore

    store = RunStore(run_dir)
    if playbook is not None:
        from sparring.cli.evolve import show_playbook

        show_playbook(store, playbook)
        return
    if match is None:
        _summarise(store, run_dir)
        return
    info = store.match(match)
    if info is None:
        indices = sorted(store.finished_indices())
        hint = f"stored matches are {indices[0]}..{indices[-1]}" if indices else "the run has no finished match"
        raise SparringError(f"no match {match} in {run_dir}: {hint}")
    console.print(Panel(Text(f"match {match} of {visible(info.game)}, seed {info.seed}\nseats: "
                             + ", ".join(f"{i + 1}: {visible(a)}" for i, a in enumerate(info.seats)))))
    rejected: str | None = None  # why the last attempt at this decision was rejected
    for turn in store.turns(match):
        _replay_turn(turn, rejected if turn.attempt and not turn.forced else None, views)
        rejected = turn.reason if not turn.valid else None
    returns = ", ".join(f"Player {i + 1}: {r:+g}" for i, r in enumerate(info.returns))
    forfeit = f" (Player {info.forfeit_by + 1} forfeited)" if info.forfeit_by is not None else ""
    console.print(Panel(f"returns: {returns}{forfeit}"))


def _summarise(store, run_dir: Path) -> None:
    """What `show` prints for a whole run: its matches' results, a tournament's payoff
    matrix and ratings, and its benchmark scores, as far as the run holds them."""
    from sparring.eval.benchmarks.report import BenchmarkReport
    from sparring.eval.report import tournament_field, tournament_ratings

    matches, plan = store.matches(), store.get_meta("tournament")
    benchmarks = store.get_meta("benchmark")
    benchmarks = [benchmarks] if isinstance(benchmarks, dict) else list(benchmarks or [])
    if matches or not benchmarks:
        print_results(store, store.get_meta("backend_stats"))
    if plan is not None and matches:
        from sparring.cli.compete import print_ratings

        played, agents = tournament_field(plan, matches)
        _, ratings, notes = tournament_ratings(plan, played, agents, bootstrap=_SHOW_BOOTSTRAP)
        if ratings is not None:
            print_ratings(ratings)
        for note in notes:
            console.print(Text(f"note: {visible(note)}"))
    for stored in benchmarks:
        console.print(Text(visible(BenchmarkReport.from_dict(stored).table())))
    if matches or benchmarks:
        console.print(f"a full report with plots: sparring report {escape(str(run_dir))}")


_SHOW_BOOTSTRAP = 200  # resamples for the rating intervals `show` prints (`report` takes --bootstrap)


def _replay_turn(turn, rejected: str | None, views: bool) -> None:
    """One attempt of a replay: who moved, the view, what the agent wrote, the
    feedback a retry was given, and what came of it. Everything an agent or model
    wrote is drawn with its control characters visible (`visible`), never obeyed."""
    from sparring.agents.llm import retry_feedback

    attempt = f", attempt {turn.attempt + 1}" if turn.attempt and not turn.forced else ""
    console.print(Text(f"Player {turn.seat + 1} ({visible(turn.agent)}){attempt}", style="bold"))
    if views and turn.view:
        console.print(Text(visible(turn.view), style="dim"))
    if rejected is not None:
        console.print(Text("feedback: ", style="yellow") + Text(visible(retry_feedback(rejected))))
    if turn.choice.completion is not None:
        console.print(Text("model: ", style="cyan") + Text(visible(turn.choice.completion)))
    if turn.choice.message:
        console.print(Text("message: ", style="magenta") + Text(visible(turn.choice.message)))
    if turn.valid:
        tag = " (random move after invalid answers)" if turn.forced else ""
        console.print(Text(f"-> plays {visible(turn.action_name or '')}{tag}", style="green"))
    else:
        console.print(Text(f"-> invalid: {visible(turn.reason or '')}", style="red"))
    console.print()


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    format: str = typer.Option("jsonl", help="jsonl (one match per line) or parquet (one turn per row)."),
    to: Optional[Path] = typer.Option(None, help="Output file [default: RUN_DIR/matches.jsonl or turns.parquet, replaced by a new export]."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --to file (never a run store)."),
) -> None:
    """Export a run's matches and turns."""
    from sparring.arena.results import export_jsonl, export_parquet
    from sparring.store import RunStore

    defaults = {"jsonl": ("matches.jsonl", "matches"), "parquet": ("turns.parquet", "turns")}
    if format not in defaults:
        raise SparringError(f"format '{format}' unknown: use jsonl or parquet")
    name, unit = defaults[format]
    path = to or run_dir / name
    check_output_file(path, force=force or to is None)  # the default file is export's own
    store = RunStore(run_dir)
    try:
        n = (export_jsonl if format == "jsonl" else export_parquet)(store.results(), path)
    except OSError as exc:
        raise SparringError(f"cannot write {path} ({exc.strerror or exc}): choose another --to") from None
    finally:
        store.close()
    console.print(f"wrote {n} {unit} to {path}")
