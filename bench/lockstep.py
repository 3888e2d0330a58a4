"""Lockstep batching vs one match at a time, with the embedded model.

Tic-tac-toe matches of the embedded model against random, played two ways in one
run: in lockstep, 32 at a time (one batched model call per tick; a finished match
is replaced by the next, so 32 stay in flight), and one after another (a model
call per decision) on the first matches of the same list. The two alternate in
rounds, so a machine that slows down for a while slows both. Reports matches per
minute, and model answers per minute, since matches differ in length.

    python bench/lockstep.py                       # 3 rounds of 64 matches, 32 at a time; 5 one at a time
    python bench/lockstep.py --rounds 1 --matches 32 --sequential 8
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan
from sparring.backends.threads import use_threads
from sparring.games.registry import make_game


@dataclass
class Tally:
    matches: int = 0
    answers: int = 0
    seconds: float = 0.0

    def play(self, game, agents, indices, concurrency, rule) -> None:
        start = time.perf_counter()
        results = play_matches(rotating_plan(game, agents, indices, run_seed=0), rule=rule, concurrency=concurrency)
        self.seconds += time.perf_counter() - start
        self.matches += len(results)
        self.answers += sum(1 for r in results for t in r.turns if t.agent == agents[0].name and not t.forced)

    def per_minute(self) -> tuple[float, float]:
        """(matches per minute, model answers per minute)."""
        return self.matches / self.seconds * 60, self.answers / self.seconds * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each playing both ways")
    parser.add_argument("--matches", type=int, default=64, help="matches per round in lockstep")
    parser.add_argument("--concurrency", type=int, default=32, help="matches in flight at once in lockstep")
    parser.add_argument("--sequential", type=int, default=5, help="matches per round one at a time (the round's first)")
    parser.add_argument("--agent", default="smollm2", help="the model agent")
    args = parser.parse_args()

    use_threads(0)  # the cores free now, as the command line chooses
    game = make_game("tictactoe")
    factory = AgentFactory(game)
    agents = [factory.make(args.agent), factory.make("random")]
    rule = InvalidMoveRule(retries=1, then="random")  # every match runs to the end
    play_matches(rotating_plan(game, agents, [0], run_seed=0), rule=rule)  # warm-up: load, first call

    lockstep, single = Tally(), Tally()
    for round_index in range(args.rounds):
        indices = range(round_index * args.matches, (round_index + 1) * args.matches)
        lockstep.play(game, agents, indices, args.concurrency, rule)
        single.play(game, agents, indices[: args.sequential], 1, rule)
        print(f"round {round_index + 1}: {lockstep.per_minute()[0]:.1f} vs {single.per_minute()[0]:.1f} matches/min so far")
    print(f"{'mode':<28} {'matches':>7} {'matches/min':>12} {'answers/min':>12}")
    for name, tally in ((f"lockstep, {args.concurrency} at a time", lockstep), ("one match at a time", single)):
        matches_rate, answers_rate = tally.per_minute()
        print(f"{name:<28} {tally.matches:>7} {matches_rate:>12.1f} {answers_rate:>12.1f}")
    (lock_matches, lock_answers), (single_matches, single_answers) = lockstep.per_minute(), single.per_minute()
    print(f"speed-up: {lock_matches / single_matches:.1f}x in matches/min, "
          f"{lock_answers / single_answers:.1f}x in model answers/min")
    factory.close()


if __name__ == "__main__":
    main()
