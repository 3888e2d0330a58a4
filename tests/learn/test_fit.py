"""Fitting the policy onto a target table by damped Gauss-Newton: the Jacobian of the
log-gap residuals equals finite differences of the policy computed answer by answer,
the undamped step is numpy's minimum-norm least-squares solution, and a few steps of
a LoRA adapter land on a random table where as many AdamW steps do not."""

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sparring.learn.fit import LevenbergMarquardt, damped_step, log_gap_residuals, residuals_and_jacobian, squared_gap
from sparring.learn.loss import option_log_policies
from sparring.learn.rollout import Sample

from test_scored_gradient import reference_log_policy, tiny_model

PROMPTS = [(5, 9, 2, 7, 11), (3, 4), (8, 1, 6)]
OPTIONS = [((12, 13), (14,), (15, 16, 17)), ((20,), (21, 22)), ((18,), (19,))]
TEMPERATURE = [1.0, 0.7, 1.0]


def samples() -> list[Sample]:
    return [Sample(prompt_ids=p, completion_ids=(), behaviour_logprobs=(), temperature=t, role=("g", 0), reward=0.0,
                   options=o) for p, o, t in zip(PROMPTS, OPTIONS, TEMPERATURE)]


def targets() -> list[torch.Tensor]:
    rng = np.random.default_rng(1)
    return [torch.tensor(rng.dirichlet(np.ones(len(o))), dtype=torch.float32) for o in OPTIONS]


def reference_residuals(model) -> np.ndarray:
    """Each state's residuals from the policy computed answer by answer, unpadded."""
    out = []
    for prompt, options, temperature, target in zip(PROMPTS, OPTIONS, TEMPERATURE, targets()):
        log_pi = np.array([reference_log_policy(model, prompt, options, k, temperature) for k in range(len(options))])
        gap = log_pi - np.log(target.numpy().astype(np.float64))
        out.extend(gap[1:] - gap[0])
    return np.array(out)


def test_the_jacobian_equals_finite_differences():
    # The output layer only, as in the scored-gradient check: float32 norms below it
    # would swamp a finite difference.
    model = tiny_model()
    for p in model.parameters():
        p.requires_grad_(p is model.lm_head.weight)
    r, jac = residuals_and_jacobian(model, samples(), targets(), pad_id=0)
    assert r.shape == (4,) and jac.shape == (4, model.lm_head.weight.numel())
    assert np.allclose(r.numpy(), reference_residuals(model), atol=1e-5)
    direction = torch.randn(model.lm_head.weight.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    eps = 1e-4
    with torch.no_grad():
        model.lm_head.weight += eps * direction
        up = reference_residuals(model)
        model.lm_head.weight -= 2 * eps * direction
        down = reference_residuals(model)
        model.lm_head.weight += eps * direction
    numeric = (up - down) / (2 * eps)
    assert np.allclose((jac.double() @ direction.reshape(-1)).numpy(), numeric, rtol=1e-4, atol=1e-4), numeric
    assert np.abs(numeric).max() > 1e-2  # the check compared something


def test_the_undamped_step_is_the_minimum_norm_least_squares_step():
    rng = np.random.default_rng(0)
    jac, r = rng.normal(size=(5, 40)), rng.normal(size=5)
    step = damped_step(torch.tensor(jac), torch.tensor(r), damping=1e-12).numpy()
    expected = np.linalg.lstsq(jac, -r, rcond=None)[0]  # minimum norm for an underdetermined system
    assert np.allclose(step, expected, atol=1e-8)
    short = damped_step(torch.tensor(jac), torch.tensor(r), damping=1e6).numpy()  # heavy damping: along -J^T r
    cosine = short @ (-jac.T @ r) / np.linalg.norm(short) / np.linalg.norm(jac.T @ r)
    assert cosine > 1 - 1e-6 and np.linalg.norm(short) < 1e-3 * np.linalg.norm(expected)


def lora_model(spread: float = 0.0):
    """A fresh LoRA adapter on a tiny model; `spread` sets its B weights at random
    (B starts at zero, the identity adapter)."""
    from sparring.learn.policy import add_lora

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    model = add_lora(LlamaForCausalLM(config).eval(), r=4, alpha=8, targets=("q_proj", "v_proj"))
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name and spread:
                p.normal_(0, spread, generator=generator)
    return model


def read(model):
    with torch.no_grad():
        return option_log_policies(model, samples(), pad_id=0)


def test_a_few_steps_of_an_adapter_land_on_a_target_table():
    """The table another adapter of the same model plays (so one exists that fits):
    a few Gauss-Newton steps land on it; as many AdamW steps do not come near."""
    table = [lp.exp() for lp in read(lora_model(spread=3.0))]
    model = lora_model()
    newton = LevenbergMarquardt(model, pad_id=0)
    log_pis = read(model)
    gaps = [squared_gap(log_pis, table)]
    for _ in range(4):
        log_pis = newton.step(samples(), table, log_pis, lambda: read(model))
        gaps.append(squared_gap(log_pis, table))
    assert gaps[0] > 0.1 and gaps[-1] < 1e-4 * gaps[0], gaps
    assert all(b <= a for a, b in zip(gaps, gaps[1:]))  # a step that does not help is undone

    plain = lora_model()
    optimizer = torch.optim.AdamW([p for p in plain.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(4):
        optimizer.zero_grad()
        loss = sum((log_gap_residuals(lp, t) ** 2).sum()
                   for lp, t in zip(option_log_policies(plain, samples(), pad_id=0), table))
        loss.backward()
        optimizer.step()
    assert squared_gap(read(plain), table) > 100 * gaps[-1]


def test_residuals_are_zero_on_the_target_and_ignore_a_shift_of_the_logits():
    target = torch.tensor([0.2, 0.5, 0.3])
    assert torch.allclose(log_gap_residuals(torch.log(target), target), torch.zeros(2), atol=1e-6)
    shifted = torch.log(target) + 3.0
    assert torch.allclose(log_gap_residuals(shifted, target), torch.zeros(2), atol=1e-6)
    assert float(log_gap_residuals(torch.log(torch.tensor([0.5, 0.5])), torch.tensor([0.2, 0.8]))[0]) == pytest.approx(
        -np.log(4.0), abs=1e-6)
