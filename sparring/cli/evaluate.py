"""Commands that measure: exploitability, benchmarks, reports."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.text import Text

from sparring.cli.app import app, console, match_progress
from sparring.errors import SparringError

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
        from sparring.store import RunStore

        store = RunStore(out, create=True)
        store.add_exploitability(report.entry(step, checkpoint=agent))
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
    with match_progress(f"matrix2x2 {task}"):
        report = run_matrix_benchmark(agent, task=task, games=n_games, seed=seed)
    _show_benchmark(report, out)


@bench_app.command("gtbench")
def bench_gtbench(
    agent: str = typer.Option(..., "--agent", help="Agent reference."),
    n_games: int = typer.Option(50, "--games", "-n", help="Matches per game and opponent."),
    seed: int = typer.Option(0, help="Seed."),
    out: Optional[Path] = typer.Option(None, help="Also store the result in this run directory, for `sparring report`."),
) -> None:
    """GTBench-style suite: normalized relative advantage against MCTS, CFR and random."""
    from sparring.eval.benchmarks import run_gtbench

    with match_progress("gtbench"):
        report = run_gtbench(agent, games=n_games, seed=seed)
    _show_benchmark(report, out)


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
