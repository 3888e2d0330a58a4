"""Does self-play training make the embedded model play better?

For each choice mode (free text, scored choice) and estimator (SPIRAL's RAE by
default; `--estimators rae,expert` puts expert iteration beside it at equal
compute): evaluate the untrained policy against a fixed opponent on N games,
train by self-play for an equal share of the time budget, and
evaluate again on the *same* N games (same seeds, deals and seats), so the
before/after difference is paired per game and its 95% interval is that of the
mean per-game difference.

    python bench/learning.py                       # the full run: 2 x 15 min, 400 games each
    python bench/learning.py --budget-s 60 --eval-games 20 --steps 2   # a smoke test
    python bench/learning.py --game tictactoe --modes free --estimators rae,expert --budget-s 1200

Writes results.json and one training run per mode and estimator under --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from sparring.arena.results import mean_ci95
from sparring.learn.evaluation import paired_change, play_eval, policy_outcomes
from sparring.backends.threads import use_threads
from sparring.learn.config import TrainConfig
from sparring.learn.trainer import POLICY_NAME, Trainer


def measure(trainer: Trainer, opponent: str, games: int) -> dict[str, list[float]]:
    results = play_eval(trainer.game, trainer.policy, trainer.factory.make(opponent), games,
                        trainer.config.seed, trainer.rule)
    return policy_outcomes(results, POLICY_NAME)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="kuhn_poker")
    parser.add_argument("--modes", default="free,scored")
    parser.add_argument("--estimators", default="rae",
                        help="comma-separated: rae, grpo, rloo, expert (expert iteration); each gets an equal share of --budget-s")
    parser.add_argument("--opponent", default="random", help="fixed evaluation opponent")
    parser.add_argument("--train-opponents", default="self", help="comma-separated opponent sources")
    parser.add_argument("--budget-s", type=float, default=1800, help="training time over all modes")
    parser.add_argument("--steps", type=int, default=100_000, help="step cap per mode")
    parser.add_argument("--eval-games", type=int, default=400)
    parser.add_argument("--games-per-step", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--model", default="", help="model directory (default: the embedded SmolLM2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=f"runs/bench-learning-{time.strftime('%Y%m%d-%H%M%S')}")
    args = parser.parse_args()

    use_threads(0)  # the cores free now, as the command line chooses
    console = Console()
    runs = [(mode, estimator) for mode in args.modes.split(",") for estimator in args.estimators.split(",")]
    out = Path(args.out)
    report: dict = {"args": vars(args), "modes": {}}
    for mode, estimator in runs:
        label = mode if estimator == "rae" else f"{mode}/{estimator}"
        config = TrainConfig(
            game=args.game, model=args.model, mode=mode, max_tokens=args.max_tokens,
            opponents=tuple(args.train_opponents.split(",")), steps=args.steps, estimator=estimator,
            time_budget_s=args.budget_s / len(runs), games_per_step=args.games_per_step, lr=args.lr,
            eval_every=0, checkpoint_every=max(1, args.steps // 4), seed=args.seed,
            out=str(out / label.replace("/", "-")),
        )
        trainer = Trainer(config, console)
        try:
            start = time.perf_counter()
            before = measure(trainer, args.opponent, args.eval_games)
            eval_s = time.perf_counter() - start
            start = time.perf_counter()
            trainer.run()
            train_s = time.perf_counter() - start
            after = measure(trainer, args.opponent, args.eval_games)
        finally:
            trainer.close()
        result = {
            "steps": trainer.step, "train_s": train_s, "eval_s_each": eval_s,
            "win_or_draw": paired_change(before["win_or_draw"], after["win_or_draw"]),
            "return": paired_change(before["return"], after["return"]),
            "invalid_rate": {"before": mean_ci95(before["invalid"])[0], "after": mean_ci95(after["invalid"])[0]},
        }
        report["modes"][label] = result
        wd, ret = result["win_or_draw"], result["return"]
        console.print(
            f"[bold]{label}[/]: {trainer.step} steps in {train_s:.0f} s; vs {args.opponent} on {args.eval_games} games: "
            f"win+draw {wd['before']:.3f} -> {wd['after']:.3f} (diff {wd['diff']:+.3f} ± {wd['diff_ci']:.3f}), "
            f"return {ret['before']:+.3f} -> {ret['after']:+.3f} (diff {ret['diff']:+.3f} ± {ret['diff_ci']:.3f}), "
            f"invalid {result['invalid_rate']['before']:.2f} -> {result['invalid_rate']['after']:.2f}"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(report, indent=2))
    console.print(f"results in {out / 'results.json'}")


if __name__ == "__main__":
    main()
