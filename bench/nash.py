"""Toward Nash: the exploitability of the embedded model's own policy in Kuhn poker,
three ways at equal compute, each measured exactly from the model's log-probabilities
(scored choice: the policy is the softmax over the legal answers):

  selfplay  plain self-play RL, one shared policy in both seats (SPIRAL-style)
  mmd       the same with a KL pull toward a slowly moving magnet (magnetic mirror
            descent, Sokota et al. 2023)
  psro      population self-play: LoRA adapters trained against the meta-Nash
            mixture of the others; the mixture's exploitability per member, then one
            adapter distilled from it
  mirror    self-play over the whole game tree: the model's exact policy against
            itself in every branch, moved toward the magnetic mirror descent step
            by its exact action values (`sparring mirror`)

Each method gets the same wall-clock budget on this machine (training and playing;
the exact measurements are not counted). Prints a table and writes curves.png and
results.json into --out.

    python bench/nash.py --budget-s 1800
    python bench/nash.py --methods psro --budget-s 900 --game leduc_poker
    python bench/nash.py --methods mirror --budget-s 1800
    python bench/nash.py --methods mirror --budget-s 3600 --game leduc_poker --mirror-fit adam --mirror-step-size 0.2 --mirror-magnet-coef 0.5
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from sparring.backends.threads import use_threads
from sparring.learn.config import TrainConfig
from sparring.learn.mirror import MirrorConfig, run_mirror
from sparring.learn.population.run import PopulationConfig, run_population
from sparring.learn.trainer import train
from sparring.store import RunStore


def trainer_curve(run_dir: Path) -> list[tuple[float, float]]:
    """(seconds of training and play so far, exploitability) at each evaluation."""
    store = RunStore(run_dir)
    try:
        elapsed, clock = {}, 0.0
        for step in store.train_steps():
            clock += step["generate_s"] + step["train_s"]
            elapsed[step["step"]] = clock
        return [(elapsed.get(e.step, 0.0), e.exploitability) for e in store.exploitability()]
    finally:
        store.close()


def summary(curve: list[tuple[float, float]], single_adapter: float | None) -> dict:
    """A method's curve, its final and best exploitability, and its one adapter's."""
    return {"curve": curve, "final": curve[-1][1], "best": min(e for _, e in curve), "single_adapter": single_adapter}


def run_trainer(method: str, args, out: Path, console) -> dict:
    extra = {"magnet_coef": args.magnet_coef, "magnet_every": args.magnet_every} if method == "mmd" else {}
    config = TrainConfig(
        game=args.game, mode="scored", opponents=("self",), steps=100_000, time_budget_s=args.budget_s,
        games_per_step=args.games_per_step, lr=args.lr, eval_every=args.eval_every, eval_opponents=(),
        eval_exploitability=True, checkpoint_every=args.eval_every * 4, seed=args.seed, out=str(out), **extra,
    )
    train(config, console)
    curve = trainer_curve(out)
    return summary(curve, curve[-1][1])


def run_psro(args, out: Path, console) -> dict:
    config = PopulationConfig(game=args.game, iterations=100, steps=args.psro_steps, games_per_step=args.games_per_step,
                              lr=args.lr, time_budget_s=args.budget_s, distill_steps=args.distill_steps,
                              seed=args.seed, out=str(out))
    run_population(config, console)
    store = RunStore(out)
    try:
        iterations = store.population_iterations()
        distilled = [e for e in store.exploitability() if e.checkpoint == "distilled"]
    finally:
        store.close()
    return summary([(i.seconds, i.exploitability) for i in iterations],
                   distilled[-1].exploitability if distilled else None)


def run_mirror_method(args, out: Path, console) -> dict:
    config = MirrorConfig(game=args.game, iterations=100_000, time_budget_s=args.budget_s,
                          step_size=args.mirror_step_size, magnet_coef=args.mirror_magnet_coef,
                          magnet_every=args.mirror_magnet_every, fit=args.mirror_fit, lr=args.mirror_lr,
                          seed=args.seed, out=str(out))
    run_mirror(config, console)
    store = RunStore(out)
    try:
        steps = store.train_steps()
        loaded = [e for e in store.exploitability() if e.checkpoint == "policy"]
    finally:
        store.close()
    # each iteration measures the policy it starts from, after the time of those before it
    return summary([(s["seconds"] - s["iteration_s"], s["exploitability"]) for s in steps], loaded[-1].exploitability)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for method, result in results.items():
        xs, ys = zip(*result["curve"])
        ax.plot([x / 60 for x in xs], ys, marker="o", label=method)
        if method == "psro" and result["single_adapter"] is not None:
            ax.scatter([xs[-1] / 60], [result["single_adapter"]], marker="*", s=150, label="psro distilled adapter")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xlabel("minutes of training and play")
    ax.set_ylabel("exploitability (exact)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="kuhn_poker")
    parser.add_argument("--methods", default="selfplay,mmd,psro,mirror")
    parser.add_argument("--budget-s", type=float, default=1800, help="wall-clock budget of each method")
    parser.add_argument("--games-per-step", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-every", type=int, default=5, help="steps between exact measurements (selfplay, mmd)")
    parser.add_argument("--magnet-coef", type=float, default=0.2)
    parser.add_argument("--magnet-every", type=int, default=10)
    parser.add_argument("--psro-steps", type=int, default=15, help="training steps per PSRO member")
    parser.add_argument("--distill-steps", type=int, default=100)
    mirror = MirrorConfig(out="unused")  # its defaults
    parser.add_argument("--mirror-step-size", type=float, default=mirror.step_size)
    parser.add_argument("--mirror-magnet-coef", type=float, default=mirror.magnet_coef)
    parser.add_argument("--mirror-magnet-every", type=int, default=mirror.magnet_every)
    parser.add_argument("--mirror-fit", default=mirror.fit, choices=("gauss_newton", "adam"))
    parser.add_argument("--mirror-lr", type=float, default=mirror.lr, help="AdamW learning rate, with --mirror-fit adam")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=f"runs/bench-nash-{time.strftime('%Y%m%d-%H%M%S')}")
    args = parser.parse_args()

    use_threads(0)
    console = Console()
    out = Path(args.out)
    results = {}
    for method in args.methods.split(","):
        start = time.perf_counter()
        run_dir = out / method
        if method == "psro":
            results[method] = run_psro(args, run_dir, console)
        elif method == "mirror":
            results[method] = run_mirror_method(args, run_dir, console)
        else:
            results[method] = run_trainer(method, args, run_dir, console)
        results[method]["wall_s"] = time.perf_counter() - start
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    plot(results, out / "curves.png")
    console.print(f"{'method':<10} {'start':>7} {'final':>7} {'best':>7} {'one adapter':>12} {'wall min':>9}")
    for method, r in results.items():
        single = "" if r["single_adapter"] is None else f"{r['single_adapter']:.4f}"
        console.print(f"{method:<10} {r['curve'][0][1]:>7.4f} {r['final']:>7.4f} {r['best']:>7.4f} {single:>12} "
                      f"{r['wall_s'] / 60:>9.1f}")
    console.print(f"curves in {out / 'curves.png'}, numbers in {out / 'results.json'}")


if __name__ == "__main__":
    main()
