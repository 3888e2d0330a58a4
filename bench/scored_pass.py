"""One training pass of the scored policy over every information state of a small
game (forward and backward of `option_log_policies`, as distillation and
`sparring mirror` run it), the prompts' shared head run once per batch against each
prompt run whole, alternated in one run; prints the times and their ratio, and how
far the two paths' log-policies and gradients differ.

    python bench/scored_pass.py                       # Kuhn poker, the embedded model
    python bench/scored_pass.py --dtype bfloat16      # fast only where the CPU has bfloat16 arithmetic
"""

from __future__ import annotations

import argparse
import time

import torch

from sparring.agents.llm import LLMAgent, LLMConfig
from sparring.backends.embedded import embedded_model_dir
from sparring.backends.threads import use_threads
from sparring.games.registry import make_game
from sparring.learn.infostates import info_state_samples
from sparring.learn.loss import option_log_policies
from sparring.learn.policy import add_lora, load_backend


def timed_pass(model, samples, pad_id: int, share_head: bool) -> tuple[float, list[torch.Tensor], torch.Tensor]:
    """Seconds of one forward and backward, the log-policies, and the gradient."""
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    log_pis = option_log_policies(model, samples, pad_id, "cpu", share_head=share_head)
    sum((lp * torch.arange(1.0, len(lp) + 1)).sum() for lp in log_pis).backward()
    seconds = time.perf_counter() - start
    grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return seconds, [lp.detach() for lp in log_pis], grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--game", default="kuhn_poker")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    use_threads(0)
    game = make_game(args.game)
    backend = load_backend(str(embedded_model_dir()), args.dtype, "cpu", "bench")
    model = backend.model = add_lora(backend.model, r=8, alpha=16, targets=("q_proj", "k_proj", "v_proj", "o_proj"))
    torch.manual_seed(0)
    for name, p in model.named_parameters():
        if "lora_B" in name:  # a trained-looking adapter, so the gradients reach every LoRA weight
            p.data.normal_(0, 0.02)
    samples = [s for _, s in info_state_samples(game, LLMAgent(backend, LLMConfig(mode="scored"), name="bench"))]
    times: dict[bool, list[float]] = {True: [], False: []}
    last = {}
    for _ in range(args.rounds):
        for share in (False, True):
            seconds, log_pis, grad = timed_pass(model, samples, backend.pad_id, share)
            times[share].append(seconds)
            last[share] = (log_pis, grad)
    policy_gap = max(float((a - b).abs().max()) for a, b in zip(last[True][0], last[False][0]))
    grad_gap = float((last[True][1] - last[False][1]).norm() / last[False][1].norm())
    plain, shared = min(times[False]), min(times[True])
    print(f"{args.game}: {len(samples)} information states, {args.dtype}, best of {args.rounds}")
    print(f"  each prompt whole: {plain:.2f} s   shared head once: {shared:.2f} s   ratio {plain / shared:.2f}x")
    print(f"  largest log-policy difference {policy_gap:.2e}, gradient difference {grad_gap:.2e} (relative)")
    backend.close()


if __name__ == "__main__":
    main()
