"""The command line: one command per job, each built from a typed config."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from sparring.errors import SparringError

app = typer.Typer(
    help="Language-model agents that learn strategic play by self-play, measured with game-theoretic rigour.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()


# Options that take one or more agents, written as `--players a b` (click options
# take one value each, so the values are spread into `--players a --players b`).
_MULTI_OPTIONS = ("--players", "-p", "--agents")


def spread_multi_options(argv: list[str]) -> list[str]:
    out: list[str] = []
    current, taken = None, 0
    for arg in argv:
        if arg in _MULTI_OPTIONS:
            if current is not None and not taken:
                out.append(current)  # a bare option: let click say a value is missing
            current, taken = arg, 0
            continue
        if current is not None and not arg.startswith("-"):
            out += [current, arg]
            taken += 1
            continue
        if current is not None and not taken:
            out.append(current)
        current = None
        out.append(arg)
    if current is not None and not taken:
        out.append(current)
    return out


def main() -> None:
    """Entry point: errors meant for people are printed without a traceback."""
    try:
        app(args=spread_multi_options(sys.argv[1:]), prog_name="sparring")
    except SparringError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(2)


def default_run_dir(kind: str) -> str:
    """Where a run goes when no --out is given: runs/<kind>-<time>."""
    return f"runs/{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def progress_bar(disable: bool = False) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=disable)


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
    from sparring.config import PlayConfig, load_config

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
    from sparring.arena.match import play_matches
    from sparring.config import config_dict
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
                play_matches(game, seat_agents, todo, config.seed, config.invalid, config.concurrency, on_match_end)
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
    table = Table(title=f"{matches[0]['game']}: {len(matches)} matches")
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
    rows = [m for m in store.matches() if m["index"] == match]
    if not rows:
        indices = sorted(store.finished_indices())
        hint = f"stored matches are {indices[0]}..{indices[-1]}" if indices else "the run has no finished match"
        raise SparringError(f"no match {match} in {run_dir}: {hint}")
    info = rows[0]
    console.print(Panel(f"match {match} of {escape(info['game'])}, seed {info['seed']}\nseats: "
                        + ", ".join(f"{i + 1}: {escape(a)}" for i, a in enumerate(info["seats"]))))
    for turn in store.turns(match):
        head = Text(f"Player {turn['player'] + 1} ({turn['agent']})", style="bold")
        console.print(head)
        if views and turn["view"]:
            console.print(Text(turn["view"], style="dim"))
        if turn["completion"] is not None:
            console.print(Text("model: ", style="cyan") + Text(turn["completion"]))
        if turn["message"]:
            console.print(Text("message: ", style="magenta") + Text(turn["message"]))
        if turn["valid"]:
            tag = " (random move after invalid answers)" if turn["forced"] else ""
            console.print(Text(f"-> plays {turn['action_name']}{tag}", style="green"))
        else:
            console.print(Text(f"-> invalid: {turn['reason']}", style="red"))
        console.print()
    returns = ", ".join(f"Player {i + 1}: {r:+g}" for i, r in enumerate(info["returns"]))
    forfeit = f" (Player {info['forfeit_by'] + 1} forfeited)" if info["forfeit_by"] is not None else ""
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


# ---- the main job ----------------------------------------------------------------


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, help="Run directory [default: runs/demo-<time>]."),
    steps: int = typer.Option(8, help="Training steps (32 self-play games each)."),
    eval_games: int = typer.Option(200, help="Evaluation games against random, before and after."),
) -> None:
    """The main job: a short self-play training run of the embedded model in Kuhn
    poker (SPIRAL-style RL, LoRA, CPU), evaluated against a random player on the
    same games before and after, with learning curves."""
    from sparring.arena.results import mean_ci95
    from sparring.learn.curves import plot_curves
    from sparring.learn.evaluation import paired_change, play_eval, policy_outcomes
    from sparring.learn.rl import POLICY_NAME, TrainConfig, Trainer

    run_dir = out or Path(default_run_dir("demo"))
    config = TrainConfig(
        game="kuhn_poker", mode="free", steps=steps, games_per_step=32, lr=1e-3,
        eval_every=0, checkpoint_every=steps, out=str(run_dir),
    )
    trainer = Trainer(config, console)
    try:
        opponent = trainer.factory.make("random")

        def evaluate(when: str) -> dict[str, list[float]]:
            with console.status(f"evaluating {when} training: {eval_games} games against random ..."):
                results = play_eval(trainer.game, trainer.policy, opponent, eval_games, config.seed, trainer.rule)
            return policy_outcomes(results, POLICY_NAME)

        before = evaluate("before")
        trainer.run()
        after = evaluate("after")
    finally:
        trainer.close()
    table = Table(title=f"Kuhn poker against random, the same {eval_games} games before and after {steps} steps")
    for column in ("", "before (95% CI)", "after (95% CI)", "change (paired 95% CI)"):
        table.add_column(column, justify="left" if not column else "right")
    for key, label in (("return", "mean return"), ("win", "win rate")):
        c = paired_change(before[key], after[key])
        table.add_row(label, f"{c['before']:+.3f} ± {c['before_ci']:.3f}", f"{c['after']:+.3f} ± {c['after_ci']:.3f}",
                      f"{c['diff']:+.3f} ± {c['diff_ci']:.3f}")
    # answers are not paired (their number changes with retries), so no paired interval
    (b, b_ci), (a, a_ci) = mean_ci95(before["invalid"]), mean_ci95(after["invalid"])
    table.add_row("invalid answer rate", f"{b:.3f} ± {b_ci:.3f}", f"{a:.3f} ± {a_ci:.3f}", f"{a - b:+.3f}")
    console.print(table)
    png, _ = plot_curves(run_dir)
    console.print(f"curves in [bold]{png}[/]; the run is in {run_dir} (sparring report {run_dir})")


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


# ---- training -----------------------------------------------------------------------


@app.command()
def train(
    game: Optional[str] = typer.Option(None, "--game", "-g", help="Game reference [default: kuhn_poker]."),
    games: Optional[list[str]] = typer.Option(None, "--games", help="Several games in one run (repeat the flag); weights from --config game_weights."),
    model: Optional[str] = typer.Option(None, help="Local model directory [default: the embedded SmolLM2-135M]."),
    mode: Optional[str] = typer.Option(None, help="free (parsed text answers) or scored (likelihood of each legal answer)."),
    steps: Optional[int] = typer.Option(None, help="Training steps in total."),
    games_per_step: Optional[int] = typer.Option(None, help="Games played per step."),
    opponents: Optional[list[str]] = typer.Option(None, "--opponents", help="Opponent sources: self, pool, latest or any agent reference."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    eval_every: Optional[int] = typer.Option(None, help="Evaluate every this many steps."),
    eval_games: Optional[int] = typer.Option(None, help="Games per evaluation opponent."),
    seed: Optional[int] = typer.Option(None, help="Seed."),
    out: Optional[str] = typer.Option(None, help="Run directory of a new run."),
    resume: Optional[str] = typer.Option(None, help="Run directory to continue from its last checkpoint."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with TrainConfig fields; flags override it."),
) -> None:
    """Self-play reinforcement learning (SPIRAL): one shared policy plays every seat,
    role-conditioned advantages, policy gradient on the sampled tokens."""
    from sparring.config import load_config
    from sparring.learn.rl import TrainConfig, train as run_training

    overrides = {
        "game": game, "games": tuple(games) if games else None, "model": model, "mode": mode, "steps": steps, "games_per_step": games_per_step,
        "opponents": tuple(opponents) if opponents else None, "lr": lr, "eval_every": eval_every,
        "eval_games": eval_games, "seed": seed, "out": out, "resume": resume,
    }
    if config is None and out is None and resume is None:
        overrides["out"] = default_run_dir("train")
    run_dir = run_training(load_config(TrainConfig, config, overrides), console=console)
    console.print(f"trained run in [bold]{run_dir}[/]; plot it with: sparring curves {run_dir}")


@app.command()
def curves(run_dir: Path = typer.Argument(..., help="A training run directory.")) -> None:
    """Learning curves of a training run: a PNG and a table of the evaluations."""
    from sparring.learn.curves import plot_curves

    png, rows = plot_curves(run_dir)
    table = Table(title="Evaluations")
    for column in ("step", "opponent", "win+draw (95% CI)", "mean return (95% CI)", "invalid rate"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(escape(str(v)) for v in row))
    console.print(table)
    console.print(f"curves written to [bold]{png}[/]")


# ---- exploitability -------------------------------------------------------------------


@app.command()
def exploitability(
    game: str = typer.Option(..., "--game", "-g", help="A small imperfect-information OpenSpiel game: kuhn_poker, leduc_poker, openspiel:NAME."),
    agent: str = typer.Option(..., "--agent", "-a", help="Agent reference, e.g. smollm2(mode=scored) or random."),
    samples: int = typer.Option(16, help="Answers per information state when the agent gives no exact distribution."),
    mode: str = typer.Option("auto", help="auto (exact when the agent reports action log-probs), exact, or sampled."),
    seed: int = typer.Option(0, help="Seed."),
    out: Optional[Path] = typer.Option(None, help="Record the result in this run directory (a training run: one entry per checkpoint step) for reports."),
    step: int = typer.Option(0, help="With --out: the training step the agent's checkpoint is from."),
) -> None:
    """How far an agent's actual policy is from optimal: its action distribution at
    every information state, then exploitability, NashConv and each seat's gap to
    the game value by OpenSpiel's best response."""
    from sparring.agents.registry import AgentFactory
    from sparring.eval.exploitability import agent_policy, exploitability_report
    from sparring.games.registry import make_game

    if mode not in ("auto", "exact", "sampled"):
        raise SparringError(f"mode '{mode}' unknown: use auto, exact or sampled")
    if samples < 1:
        raise SparringError(f"samples must be at least 1, got {samples}")
    the_game = make_game(game)
    factory = AgentFactory(the_game)
    try:
        with console.status("asking the agent at every information state ..."):
            policy = agent_policy(the_game, factory.make(agent), samples=samples, seed=seed, mode=mode)
        report = exploitability_report(the_game, policy, seed=seed)
        console.print(Text(report.summary()))
    finally:
        factory.close()
    if out is not None:
        from sparring.eval.report import add_exploitability
        from sparring.store import RunStore

        store = RunStore(out, create=True)
        add_exploitability(store, step, report, checkpoint=agent)
        store.close()
        console.print(f"recorded in [bold]{out}[/]")


# ---- benchmarks -------------------------------------------------------------------------

bench_app = typer.Typer(help="Held-out benchmarks.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")


@bench_app.command("matrix2x2")
def bench_matrix(
    agent: str = typer.Option(..., "--agent", help="Agent reference, e.g. smollm2 or smollm2(mode=scored)."),
    task: str = typer.Option("nash", help="nash (name the pure equilibria, one shot) or repeated (10 rounds vs fixed strategies)."),
    n_games: Optional[int] = typer.Option(None, "--games", "-n", help="Play a seeded sample of this many of the 144 games [default: all]."),
    seed: int = typer.Option(0, help="Seed."),
    out: Optional[Path] = typer.Option(None, help="Also store the result in this run directory, for `sparring report`."),
) -> None:
    """The 144 strict ordinal 2x2 games (Robinson-Goforth topology)."""
    from sparring.eval.benchmarks import run_matrix_benchmark

    if task not in ("nash", "repeated"):
        raise SparringError(f"task '{task}' unknown: use nash or repeated")
    _show_benchmark(run_matrix_benchmark(agent, task=task, games=n_games, seed=seed), out)


@bench_app.command("gtbench")
def bench_gtbench(
    agent: str = typer.Option(..., "--agent", help="Agent reference."),
    n_games: int = typer.Option(50, "--games", "-n", help="Matches per game and opponent."),
    seed: int = typer.Option(0, help="Seed."),
    out: Optional[Path] = typer.Option(None, help="Also store the result in this run directory, for `sparring report`."),
) -> None:
    """GTBench-style suite: normalized relative advantage against MCTS, CFR and random."""
    from sparring.eval.benchmarks import run_gtbench

    _show_benchmark(run_gtbench(agent, games=n_games, seed=seed), out)


def _show_benchmark(report, out: Path | None) -> None:
    """Print a benchmark's table; with `out`, add it to that run's "benchmark" list."""
    console.print(Text(report.table()))
    if out is not None:
        from sparring.store import RunStore

        store = RunStore(out, create=True)
        stored = store.get_meta("benchmark") or []
        store.set_meta("benchmark", (stored if isinstance(stored, list) else [stored]) + [report.to_dict()])
        store.close()
        console.print(f"stored in [bold]{out}[/]; write a report with: sparring report {out}")


# ---- reports ----------------------------------------------------------------------------


@app.command()
def report(
    run_dir: Path = typer.Argument(..., help="A run directory: play, tournament, training or benchmark."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for rating intervals."),
) -> None:
    """A self-contained HTML page and a markdown summary of a run, with plots."""
    from sparring.eval.report import write_report

    html_path, md_path = write_report(run_dir, bootstrap=bootstrap)
    console.print(f"wrote [bold]{html_path}[/] and [bold]{md_path}[/]")
