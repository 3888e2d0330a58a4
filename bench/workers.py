"""Tournaments on Ray workers against one process, side by side in one run:

1. overhead: a Kuhn poker tournament of scripted agents (random, always_bet,
   always_pass; almost no compute per match), so what the workers add shows: seconds
   per chunk of matches sent and returned, over playing them here;
2. throughput: a Kuhn poker tournament of the embedded model (scored) against random
   and cfr, in matches per minute, in this process (every core) and on 1 and 2 workers
   (a core each). On 2 cores expect little gain; the point is that the same code and
   the same matches run on a cluster (`--ray-address`).

    python bench/workers.py                    # 200 + 32 games per pair
    python bench/workers.py --scripted-games 100 --model-games 16
"""

from __future__ import annotations

import argparse
import math
import time

import ray

from sparring.agents.registry import AgentFactory
from sparring.arena.match import play_matches
from sparring.arena.tournament import run_tournament
from sparring.arena.workers import ByReference, Workers
from sparring.backends.threads import use_threads
from sparring.games.registry import make_game

SCRIPTED = ("random", "always_bet", "always_pass")
MODEL = ("smollm2(mode=scored,dtype=float32)", "random", "cfr(iterations=100)")


def timed(game, agents, games, play, concurrency) -> tuple[float, list]:
    start = time.perf_counter()
    result = run_tournament(game, agents, games, seed=0, play=play, concurrency=concurrency)
    return time.perf_counter() - start, result.matches


def compare(label: str, refs: tuple[str, ...], games: int, concurrency: int, overhead: bool) -> None:
    game = make_game("kuhn_poker")
    factory = AgentFactory(game)
    here = [factory.make(ref) for ref in refs]
    timed(game, here, 2, play_matches, concurrency)  # warm-up: models load, solvers solve
    rows = [("this process", *timed(game, here, games, play_matches, concurrency))]
    for count in (1, 2):
        workers = Workers(count, say=lambda text: None)
        try:
            named = [ByReference(ref) for ref in refs]
            timed(game, named, 2, workers.play, concurrency)  # each worker builds its agents
            rows.append((f"{count} worker{'s' * (count > 1)}", *timed(game, named, games, workers.play, concurrency)))
        finally:
            workers.close()
    factory.close()
    same = all([m.returns for m in matches] == [m.returns for m in rows[0][2]] for _, _, matches in rows)
    matches = len(rows[0][2])
    chunks = math.ceil(matches / concurrency)
    print(f"\n{label}: {matches} matches, chunks of {concurrency}; same matches everywhere: {same}")
    print(f"{'where':<14} {'seconds':>8} {'matches/min':>12} {'vs this process':>16}")
    for where, seconds, _ in rows:
        print(f"{where:<14} {seconds:>8.2f} {matches / seconds * 60:>12.0f} {rows[0][1] / seconds:>15.2f}x")
    if overhead:  # scripted agents: what a worker adds is sending and returning the chunks
        print(f"overhead of 1 worker: {(rows[1][1] - rows[0][1]) / chunks * 1000:+.1f} ms per chunk of {concurrency}")
    else:
        print("(this process uses every core; each worker one)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scripted-games", type=int, default=200, help="games per pair, scripted tournament")
    parser.add_argument("--model-games", type=int, default=32, help="games per pair, model tournament")
    args = parser.parse_args()
    use_threads(0)  # this process: every free core; each worker takes one
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        compare("scripted agents (overhead)", SCRIPTED, args.scripted_games, concurrency=16, overhead=True)
        compare("the embedded model, scored, against random and cfr", MODEL, args.model_games, concurrency=16,
                overhead=False)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
