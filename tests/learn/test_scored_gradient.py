"""Scored choice trains the policy it samples: the loss's log pi(chosen) is the log
softmax over the legal answers' log-likelihoods, and its gradient equals a finite
difference of that function computed independently, one answer at a time."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sparring.learn.loss import scored_logprobs
from sparring.learn.rollout import Sample

PROMPTS = [(5, 9, 2, 7, 11), (3, 4)]
OPTIONS = [((12, 13), (14,), (15, 16, 17)), ((20,), (21, 22))]
CHOSEN = [2, 0]
TEMPERATURE = [1.0, 0.7]


def tiny_model() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         initializer_range=0.3)  # large weights: gradients well above rounding noise
    return LlamaForCausalLM(config).double().eval()


def samples() -> list[Sample]:
    return [Sample(prompt_ids=p, completion_ids=o[c], behaviour_logprobs=(0.0,), temperature=t, role=("g", 0),
                   reward=1.0, options=o, chosen=c)
            for p, o, c, t in zip(PROMPTS, OPTIONS, CHOSEN, TEMPERATURE)]


@torch.no_grad()
def reference_log_policy(model, prompt, options, chosen, temperature) -> float:
    """log softmax over options of sum_t log p(option_t | prompt, option_<t), each
    answer run alone with no padding."""
    scores = []
    for option in options:
        ids = torch.tensor([list(prompt) + list(option)])
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
        targets = ids[0, 1:]
        scores.append(float(logp[torch.arange(len(targets)), targets][-len(option):].sum()))
    scaled = torch.tensor(scores, dtype=torch.float64) / temperature
    return float(torch.log_softmax(scaled, dim=0)[chosen])


def test_scored_log_policy_is_the_softmax_over_answers():
    model = tiny_model()
    with torch.no_grad():
        got, mask = scored_logprobs(model, samples(), pad_id=0)
    assert got.shape == mask.shape == (2, 1)
    for row, args in enumerate(zip(PROMPTS, OPTIONS, CHOSEN, TEMPERATURE)):
        assert abs(float(got[row, 0]) - reference_log_policy(model, *args)) < 1e-6  # the loss scores in float32


def test_scored_gradient_equals_finite_differences():
    # The output layer's rows of answer tokens: transformers runs its norms and
    # attention softmax in float32, whose rounding would swamp a finite difference of
    # weights below them; the output layer sits after all of those.
    model = tiny_model()
    weight = model.lm_head.weight
    got, _ = scored_logprobs(model, samples(), pad_id=0)
    objective = got.sum()  # both samples, so rows of different lengths and temperatures count
    (gradient,) = torch.autograd.grad(objective, weight)
    eps = 1e-4
    for index in [(15, 0), (16, 7), (14, 3), (20, 2), (22, 11)]:
        with torch.no_grad():
            weight[index] += eps
            up = sum(reference_log_policy(model, *args) for args in zip(PROMPTS, OPTIONS, CHOSEN, TEMPERATURE))
            weight[index] -= 2 * eps
            down = sum(reference_log_policy(model, *args) for args in zip(PROMPTS, OPTIONS, CHOSEN, TEMPERATURE))
            weight[index] += eps
        numeric = (up - down) / (2 * eps)
        assert abs(float(gradient[index]) - numeric) < 1e-4 * max(1.0, abs(numeric)), (index, float(gradient[index]), numeric)
    assert float(gradient.abs().max()) > 1e-6  # the check compared something


def test_a_shared_head_runs_once_with_the_same_numbers_and_gradients():
    """Prompts that share a long head (the system prompt and rules): the fast path
    runs the head once for the batch; the plain path runs each prompt whole. Both
    give the same log-policies and the same gradients, and the fast path agrees with
    the reference computed prompt by prompt."""
    from sparring.learn.loss import option_log_policies

    head = tuple(range(1, 21))  # 20 tokens, above the shared-head minimum
    prompts = [head + (5, 9, 2), head + (3,), head + (7, 8, 4, 6)]
    options = [((12, 13), (14,)), ((20,), (21, 22), (23,)), ((15, 16, 17), (18,))]
    batch = [Sample(prompt_ids=p, completion_ids=o[0], behaviour_logprobs=(0.0,), temperature=t, role=("g", 0),
                    reward=1.0, options=o, chosen=0)
             for p, o, t in zip(prompts, options, (1.0, 0.7, 1.3))]
    model = tiny_model()
    results = {}
    for share in (True, False):
        model.zero_grad()
        log_pis = option_log_policies(model, batch, pad_id=0, share_head=share)
        sum((lp * torch.arange(1.0, len(lp) + 1, dtype=lp.dtype)).sum() for lp in log_pis).backward()
        results[share] = ([lp.detach() for lp in log_pis], [p.grad.clone() for p in model.parameters()])
    for fast, plain in zip(results[True][0], results[False][0]):
        assert torch.allclose(fast, plain, atol=1e-10)
    for fast, plain in zip(results[True][1], results[False][1]):
        # 1e-7 relative: the plain path's padded positions (masked by an additive
        # finfo.min, not removed) reach the first layer's gradients at that level
        assert torch.allclose(fast, plain, rtol=1e-6, atol=1e-6)
    for s, log_pi in zip(batch, results[True][0]):
        for k in range(len(s.options)):
            assert float(log_pi[k]) == pytest.approx(
                reference_log_policy(model, s.prompt_ids, s.options, k, s.temperature), abs=1e-5)  # float32 log-softmax
