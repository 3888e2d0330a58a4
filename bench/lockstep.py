"""Lockstep batching vs one match at a time, with the embedded model.

Tic-tac-toe matches of the embedded model against random are played twice in one
run: in lockstep, 32 at a time (one batched model call per tick; a finished match
is replaced by the next, so 32 stay in flight), and one after another (a model
call per decision), on the first matches of the same list. Reports matches per
minute, and model answers per minute, since matches differ in length.

    python bench/lockstep.py                     # 96 matches, 32 at a time; 16 one at a time
    python bench/lockstep.py --matches 32 --concurrency 32 --sequential 8
"""

from __future__ import annotations

import argparse
import time

from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule, play_matches
from sparring.games.registry import make_game


def per_minute(game, agents, indices, concurrency, rule) -> tuple[float, float]:
    """(matches per minute, model answers per minute)."""
    start = time.perf_counter()
    results = play_matches(game, agents, indices, run_seed=0, rule=rule, concurrency=concurrency)
    minutes = (time.perf_counter() - start) / 60
    answers = sum(1 for r in results for t in r.turns if t.agent == agents[0].name and not t.forced)
    return len(results) / minutes, answers / minutes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=96, help="matches in the lockstep run")
    parser.add_argument("--concurrency", type=int, default=32, help="matches in flight at once in the lockstep run")
    parser.add_argument("--sequential", type=int, default=16, help="matches in the one-at-a-time run (the first of the same matches)")
    parser.add_argument("--agent", default="smollm2", help="the model agent")
    args = parser.parse_args()

    game = make_game("tictactoe")
    factory = AgentFactory(game)
    agents = [factory.make(args.agent), factory.make("random")]
    rule = InvalidMoveRule(retries=1, then="random")  # every match runs to the end
    play_matches(game, agents, [0], run_seed=0, rule=rule)  # warm-up: load, first call

    lockstep = per_minute(game, agents, range(args.matches), args.concurrency, rule)
    single = per_minute(game, agents, range(args.sequential), 1, rule)
    print(f"{'mode':<28} {'matches':>7} {'matches/min':>12} {'answers/min':>12}")
    print(f"{'lockstep, ' + str(args.concurrency) + ' at a time':<28} {args.matches:>7} {lockstep[0]:>12.1f} {lockstep[1]:>12.1f}")
    print(f"{'one match at a time':<28} {args.sequential:>7} {single[0]:>12.1f} {single[1]:>12.1f}")
    print(f"speed-up: {lockstep[0] / single[0]:.1f}x in matches/min, {lockstep[1] / single[1]:.1f}x in model answers/min")
    factory.close()


if __name__ == "__main__":
    main()
