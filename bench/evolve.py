"""Does self-evolution make the agent stronger? Runs (or continues) an evolution,
then plays every version that was ever the best against fixed references on the
same seeded games, and prints per generation: the best version, the candidate and
its test, and the best version's mean return against each reference with its 95%
interval, paired against version 0 on the same games.

    python bench/evolve.py                          # the embedded model as agent and critic, Kuhn poker
    python bench/evolve.py --agent "openai(model=gpt-4o-mini)" --generations 8 --games 32 --eval-games 400

Writes results.json beside the run under --out; run it again to continue the run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from rich.console import Console

from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule
from sparring.games.registry import make_game
from sparring.learn.evaluation import paired_change, play_eval, policy_outcomes
from sparring.learn.evolve.run import VERSIONS_DIR, EvolveConfig, run_evolution
from sparring.store import RunStore


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="kuhn_poker")
    parser.add_argument("--agent", default="smollm2")
    parser.add_argument("--critic", default="", help="the critic's model (default: the agent's own)")
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--games", type=int, default=16, help="matches per generation")
    parser.add_argument("--references", default="random,cfr", help="comma-separated fixed references")
    parser.add_argument("--eval-games", type=int, default=100, help="games per version and reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=f"runs/bench-evolve-{time.strftime('%Y%m%d-%H%M%S')}")
    args = parser.parse_args()

    console, run_dir = Console(), Path(args.out)
    settings = {"game": args.game, "agent": args.agent, "critic": args.critic, "generations": args.generations,
                "games": args.games, "seed": args.seed}
    resume = (run_dir / "run.sqlite").exists()
    start = time.perf_counter()
    run_evolution(EvolveConfig(**settings, **({"resume": str(run_dir)} if resume else {"out": str(run_dir)})), console)
    evolve_s = time.perf_counter() - start

    store = RunStore(run_dir)
    generations, promotions = store.generations(), {p.version: p for p in store.promotions()}
    store.close()
    bests = sorted({0} | {g.best for g in generations})
    game, references = make_game(args.game), args.references.split(",")
    factory = AgentFactory(game)
    outcomes: dict[tuple[int, str], list[float]] = {}
    try:
        for version in bests:
            player = factory.make(str(run_dir / VERSIONS_DIR / f"v{version}"))
            for reference in references:
                results = play_eval(game, player, factory.make(reference), args.eval_games, args.seed, InvalidMoveRule())
                outcomes[version, reference] = policy_outcomes(results, player.name)["return"]
    finally:
        factory.close()

    rows = []
    for g in [None, *generations]:
        best = 0 if g is None else g.best
        p = promotions.get(g.candidate) if g is not None else None
        row = {"generation": 0 if g is None else g.generation, "best": best,
               "candidate": None if g is None else g.candidate, "decision": p.decision if p else (g and g.event),
               "pairs": [p.wins, p.losses, p.ties] if p else None,
               "tokens": None if g is None else [g.tokens_in, g.tokens_out]}
        for reference in references:
            row[reference] = paired_change(outcomes[0, reference], outcomes[best, reference])
        rows.append(row)
        against = "; ".join(f"vs {r}: {row[r]['after']:+.3f} ± {row[r]['after_ci']:.3f} "
                            f"(vs v0 {row[r]['diff']:+.3f} ± {row[r]['diff_ci']:.3f})" for r in references)
        test = f"v{row['candidate']} {row['decision']}" if row["candidate"] is not None else (row["decision"] or "start")
        console.print(f"generation {row['generation']}: best v{best} ({test}); {against}")
    (run_dir / "results.json").write_text(json.dumps({"args": vars(args), "evolve_s": evolve_s, "rows": rows},
                                                     indent=2, default=str))
    console.print(f"evolution {evolve_s:.0f} s; results in {run_dir / 'results.json'}")


if __name__ == "__main__":
    main()
