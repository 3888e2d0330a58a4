"""Lockstep batching vs one match at a time, with the embedded model.

The same tic-tac-toe matches (embedded model vs random, same seeds) are played
twice in one run: all at once in lockstep (one batched model call per tick), and
one after another (a model call per decision). Reports matches per minute.

    python bench/lockstep.py                     # 32 concurrent matches
    python bench/lockstep.py --matches 32 --sequential 8
"""

from __future__ import annotations

import argparse
import time

from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule, play_matches
from sparring.games.registry import make_game


def matches_per_minute(game, agents, indices, concurrency, rule) -> tuple[float, int]:
    start = time.perf_counter()
    results = play_matches(game, agents, indices, run_seed=0, rule=rule, concurrency=concurrency)
    elapsed = time.perf_counter() - start
    return len(results) / elapsed * 60, sum(len(r.turns) for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=32, help="concurrent matches in the lockstep run")
    parser.add_argument("--sequential", type=int, default=8, help="matches in the one-at-a-time run (a subset of the same matches)")
    parser.add_argument("--agent", default="smollm2", help="the model agent")
    args = parser.parse_args()

    game = make_game("tictactoe")
    factory = AgentFactory(game)
    agents = [factory.make(args.agent), factory.make("random")]
    rule = InvalidMoveRule(retries=1, then="random")  # every match runs to the end
    play_matches(game, agents, [0], run_seed=0, rule=rule)  # warm-up: load, first call

    lockstep, lockstep_turns = matches_per_minute(game, agents, range(args.matches), args.matches, rule)
    single, single_turns = matches_per_minute(game, agents, range(args.sequential), 1, rule)
    print(f"{'mode':<28} {'matches':>7} {'turns':>6} {'matches/min':>12}")
    print(f"{'lockstep, ' + str(args.matches) + ' at once':<28} {args.matches:>7} {lockstep_turns:>6} {lockstep:>12.1f}")
    print(f"{'one match at a time':<28} {args.sequential:>7} {single_turns:>6} {single:>12.1f}")
    print(f"speed-up: {lockstep / single:.1f}x")
    factory.close()


if __name__ == "__main__":
    main()
