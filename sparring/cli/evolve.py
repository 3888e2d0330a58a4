"""The evolution command, and how `show` prints one playbook version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from sparring.cli.app import app, console, match_progress
from sparring.display import visible
from sparring.errors import SparringError


@app.command()
def evolve(
    game: Optional[str] = typer.Option(None, "--game", "-g", help="A 2-player game [default: kuhn_poker]."),
    agent: Optional[str] = typer.Option(None, help="The language model whose playbook evolves [default: smollm2]."),
    critic: Optional[str] = typer.Option(None, help="The model that writes feedback and revisions [default: the agent's own]."),
    generations: Optional[int] = typer.Option(None, help="Generations in all [default: 4]; with --resume, more extend the run."),
    games: Optional[int] = typer.Option(None, help="Matches per generation against the opponents [default: 32]."),
    opponents: Optional[list[str]] = typer.Option(None, "--opponents", help="Fixed references every generation plays (repeat the flag) [default: random]; earlier promoted versions join them."),
    transcripts: Optional[int] = typer.Option(None, help="Games the critic reads per generation [default: 6]."),
    max_rules: Optional[int] = typer.Option(None, help="Most rules in a playbook [default: 8]."),
    max_tokens: Optional[int] = typer.Option(None, help="The playbook's length limit in the agent's tokens [default: 300]."),
    max_pairs: Optional[int] = typer.Option(None, help="Promotion: most pairs of matches before an undecided test rejects [default: 60]."),
    budget_tokens: Optional[int] = typer.Option(None, help="Stop before a generation would take the run past this many tokens, in and out; 0: no limit [default: 0]."),
    seed: Optional[int] = typer.Option(None, help="Seed [default: 0]."),
    out: Optional[str] = typer.Option(None, help="Run directory of a new run [default: runs/evolve-<time>]."),
    resume: Optional[str] = typer.Option(None, help="Run directory to continue, with its stored settings."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with EvolveConfig fields (prompt files, reveal, p1, alpha, beta, ...); flags override it."),
) -> None:
    """Self-evolution with language feedback: the agent plays, a critic reads its
    games and says what lost and what won, a reviser rewrites its playbook, and the
    rewrite is promoted only if it beats its parent in a sequential test on paired
    games. Every version plays as an agent (RUN_DIR/versions/vN, RUN_DIR/best)."""
    from sparring.cli.config import (
        build_config,
        config_values,
        new_run,
        stored_run_settings,
    )
    from sparring.learn.evolve.run import EXTENDABLE, EvolveConfig, run_evolution

    flags = {"game": game, "agent": agent, "critic": critic, "generations": generations, "games": games,
             "opponents": tuple(opponents) if opponents else None, "transcripts": transcripts, "max_rules": max_rules,
             "max_tokens": max_tokens, "max_pairs": max_pairs, "budget_tokens": budget_tokens, "seed": seed, "out": out}
    if resume is not None:
        changed = sorted(k for k, v in flags.items() if v is not None and k not in EXTENDABLE)
        if changed or config is not None:
            raise SparringError(f"--resume takes the run's stored settings; only --generations and --budget-tokens "
                                f"may be given with it, not {', '.join('--' + k.replace('_', '-') for k in changed) or '--config'}")
        extend = {k: flags[k] for k in EXTENDABLE if flags[k] is not None}
        settings = build_config(EvolveConfig, {**stored_run_settings(resume, "evolve_config", "evolution"), **extend,
                                               "resume": resume})
    else:
        settings = new_run(EvolveConfig, config_values(EvolveConfig, config, flags), "evolve")
    with match_progress("matches played"):
        run_dir = run_evolution(settings, console=console)
    print_generations(run_dir)
    console.print(f"the best version plays as [bold]{run_dir}/best[/] (e.g. --players {run_dir}/best); "
                  f"its history: sparring show {run_dir} --playbook N; sparring report {run_dir}")


def print_generations(run_dir: Path) -> None:
    from sparring.store import RunStore

    store = RunStore(run_dir)
    try:
        generations, promotions = store.generations(), {p.version: p for p in store.promotions()}
    finally:
        store.close()
    table = Table(title="generations")
    for column in ("gen", "from", "candidate", "decision", "pairs won-lost-tied", "tokens in / out", "best"):
        table.add_column(column)
    for g in generations:
        p = promotions.get(g.candidate)
        table.add_row(str(g.generation), f"v{g.parent}", f"v{g.candidate}" if g.candidate is not None else "-",
                      p.decision if p else "no rule in the revision",
                      f"{p.wins}-{p.losses}-{p.ties}" if p else "", f"{g.tokens_in:,} / {g.tokens_out:,}", f"v{g.best}")
    console.print(table)


def show_playbook(store, version: int) -> None:
    """One version: its rules, the diff from its parent, and the evidence (the
    critic's words it came from, the test that decided it)."""
    versions = {v.version: v for v in store.playbooks()}
    if version not in versions:
        known = ", ".join(map(str, versions)) or "none: the run holds no evolution"
        raise SparringError(f"no playbook version {version} in {store.dir}: versions are {known}")
    v = versions[version]
    console.print(Text(f"v{v.version} (generation {v.generation}, revised from v{v.parent})" if v.parent is not None
                       else "v0: the agent with no playbook"))
    rules = json.loads(v.rules)
    console.print(Text(visible(v.notes) if rules else "(no rules)"))
    if v.parent is None:
        return
    diff = v.diff_from(versions[v.parent])
    console.print(Text("\n" + visible("\n".join([f"--- v{v.parent}", f"+++ v{v.version}", *diff] if diff else []))))
    generation = next((g for g in store.generations() if g.candidate == v.version), None)
    if generation is not None:
        console.print(Text(f"\nthe critic's feedback it came from:\n{visible(generation.feedback)}"))
    promotion = next((p for p in store.promotions() if p.version == v.version), None)
    if promotion is not None:
        console.print(f"\n[bold]{promotion.decision}[/]: {escape(promotion.reason)}")
