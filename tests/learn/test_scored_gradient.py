"""Scored choice trains the policy it samples: the loss's log pi(chosen) is the log
softmax over the legal answers' log-likelihoods, and its gradient equals a finite
difference of that function computed independently, one answer at a time."""

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
