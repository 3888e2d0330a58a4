"""Distillation: one LoRA adapter trained to play a target tabular policy (a
population's mixture), so a user ends with one model rather than a population.

In a small game every information state is visited (`sparring.learn.infostates`):
the adapter minimises the mean over information states of KL(target(.|s) || pi(.|s))
(policy distillation, Rusu et al. 2016, with the exact target instead of sampled
play).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from sparring.agents.llm import LLMAgent, LLMConfig
from sparring.backends.embedded import embedded_model_dir
from sparring.backends.hf import native_dtype
from sparring.eval.exploitability import exploitability_report
from sparring.learn.checkpoint import POLICY_DIR, loaded_policy, write_policy
from sparring.learn.infostates import info_state_samples, kl_to_target
from sparring.learn.loss import option_log_policies
from sparring.learn.policy import add_lora, load_backend


@dataclass(frozen=True)
class DistillStep:
    step: int
    kl: float  # mean over information states of KL(target || pi), before the step
    max_kl: float  # the largest per state


def distill(model, agent: LLMAgent, game, target: dict[str, dict[int, float]], steps: int, lr: float,
            tolerance: float = 1e-3, on_step=None) -> list[DistillStep]:
    """Train `model`'s trainable weights (the agent's backend runs `model`) toward
    `target` at every information state; stop after `steps` full passes or once the
    largest per-state KL is below `tolerance`. Returns the KL before each step."""
    states = info_state_samples(game, agent)
    targets = [torch.tensor([target[info.key].get(a, 0.0) for a in info.legal], dtype=torch.float32)
               for info, _ in states]
    samples = [sample for _, sample in states]
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    device = agent.backend.config.device
    log = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        kls = []
        for start in range(0, len(samples), 16):  # 16 states (and all their answers) per pass
            chunk = samples[start:start + 16]
            log_pis = option_log_policies(model, chunk, agent.backend.pad_id, device)
            chunk_kl = [kl_to_target(t.to(device), lp) for t, lp in zip(targets[start:start + 16], log_pis)]
            (torch.stack(chunk_kl).sum() / len(samples)).backward()
            kls += [float(k.detach()) for k in chunk_kl]
        log.append(DistillStep(step, sum(kls) / len(kls), max(kls)))
        if on_step is not None:
            on_step(log[-1])
        if log[-1].max_kl < tolerance:
            break
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return log


def distill_mixture(game, target: dict[str, dict[int, float]], folder, config, say=None):
    """A fresh LoRA adapter of the base model distilled into `target`, saved as
    FOLDER/policy (with the options it plays by), and its exact exploitability
    report. `config` gives model, temperature, lr, distill_steps and seed."""
    torch.manual_seed(config.seed)
    options = LLMConfig(mode="scored", temperature=config.temperature)
    backend = load_backend(config.model or str(embedded_model_dir()), native_dtype(), "cpu", "distilled")
    try:
        model = backend.model = add_lora(backend.model, r=8, alpha=16, targets=("q_proj", "k_proj", "v_proj", "o_proj"))

        def report_step(step: DistillStep) -> None:
            if say is not None and step.step % 25 == 0:
                say(f"  distill pass {step.step}: mean KL {step.kl:.4f}, largest {step.max_kl:.4f}")

        distill(model, LLMAgent(backend, options, name="distilled"), game, target, config.distill_steps, config.lr,
                on_step=report_step)
        folder = Path(folder)
        write_policy(folder / POLICY_DIR, model, dataclasses.asdict(options))
    finally:
        backend.close()
    return exploitability_report(game, loaded_policy(game, folder))
