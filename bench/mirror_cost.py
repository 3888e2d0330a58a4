"""What one `sparring mirror --fit adam` iteration costs on this machine: the
model's forward pass over information states (reading the policy) and a forward and
backward pass (one AdamW fit step), timed on a sample of `--states` states and scaled
to the game's all. An iteration reads the policy, then takes up to `fit_steps` fit
steps, each followed by a read.

    python bench/mirror_cost.py --game kuhn_poker --states 12
    python bench/mirror_cost.py --game leduc_poker --states 32
"""

from __future__ import annotations

import argparse
import random
import time

import torch

from sparring.agents.llm import LLMAgent, LLMConfig
from sparring.backends.embedded import embedded_model_dir
from sparring.backends.threads import use_threads
from sparring.games.registry import make_game
from sparring.learn.fit import log_gap_residuals
from sparring.learn.infostates import info_state_samples
from sparring.learn.loss import option_log_policies
from sparring.learn.mirror import LORA_TARGETS, MirrorConfig
from sparring.learn.policy import add_lora, load_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="leduc_poker")
    parser.add_argument("--states", type=int, default=32, help="information states timed (a random sample)")
    args = parser.parse_args()
    use_threads(0)
    config = MirrorConfig(game=args.game, out="unused")
    backend = load_backend(str(embedded_model_dir()), config.model_dtype, "cpu", "policy")
    model = backend.model = add_lora(backend.model, r=config.lora_rank, alpha=2 * config.lora_rank,
                                     targets=LORA_TARGETS)
    states = info_state_samples(make_game(args.game), LLMAgent(backend, LLMConfig(mode="scored"), name="policy"))
    timed = random.Random(0).sample(states, min(args.states, len(states)))
    samples = [sample for _, sample in timed]
    chunks = [samples[i:i + config.chunk] for i in range(0, len(samples), config.chunk)]

    start = time.perf_counter()
    with torch.no_grad():
        read = [lp for chunk in chunks for lp in option_log_policies(model, chunk, backend.pad_id, "cpu")]
    read_s = (time.perf_counter() - start) / len(samples)
    start = time.perf_counter()
    for chunk, chunk_read in zip(chunks, [read[i:i + config.chunk] for i in range(0, len(read), config.chunk)]):
        loss = sum((log_gap_residuals(lp, torch.softmax(old, 0)) ** 2).sum()  # any target: the cost is the same
                   for lp, old in zip(option_log_policies(model, chunk, backend.pad_id, "cpu"), chunk_read))
        loss.backward()
    fit_s = (time.perf_counter() - start) / len(samples)

    n, steps = len(states), config.fit_steps
    print(f"{args.game}: {n} information states, {len(samples)} timed, dtype {config.model_dtype}, "
          f"{torch.get_num_threads()} threads")
    print(f"  read the policy:    {read_s:.3f} s a state, {read_s * n / 60:.1f} min for all")
    print(f"  one AdamW fit step: {fit_s:.3f} s a state, {fit_s * n / 60:.1f} min for all")
    iteration = (1 + steps) * read_s * n + steps * fit_s * n
    print(f"  one iteration at fit_steps={steps}: about {iteration / 60:.1f} min")


if __name__ == "__main__":
    main()
