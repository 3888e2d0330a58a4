"""Magnetic mirror descent (Sokota et al., ICLR 2023, arXiv 2206.05825): the magnet
term of the loss pulls the policy toward the magnet with the gradient of the reverse
KL(pi || magnet), computed here independently over the legal answers: exactly in
scored mode, in expectation for the sampled tokens of free text; it vanishes where
the policy is the magnet. The trainer replaces the magnet exactly every
`magnet_every` steps, swaps its weights in and out without a trace, and a resumed run
continues with the same magnet."""

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from sparring.backends.threads import use_threads
from sparring.errors import SparringError
from sparring.learn.config import TrainConfig
from sparring.learn.loss import (
    answer_kl,
    chosen_logprobs,
    k3_kl,
    option_log_policies,
    policy_loss,
    sample_logprobs,
    scored_logprobs,
)
from sparring.learn.rollout import Sample
from sparring.learn.trainer import Trainer

PROMPT = (5, 9, 2, 7, 11)
OPTIONS = ((12, 13), (14,), (15, 16, 17))
ALPHA = 0.3  # magnet_coef


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    use_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_model() -> LlamaForCausalLM:
    """As in test_scored_gradient: float64, large weights, gradients well above rounding."""
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         initializer_range=0.3)
    return LlamaForCausalLM(config).double().eval()


def moved(model: LlamaForCausalLM, scale: float) -> LlamaForCausalLM:
    """A copy whose output rows of the answer tokens are moved: another policy."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.lm_head.weight[12:18] += scale * torch.randn(6, 16, generator=torch.Generator().manual_seed(1),
                                                           dtype=torch.float64)
    return other


@torch.no_grad()
def log_policy(model) -> torch.Tensor:
    """log softmax over OPTIONS of each answer's summed token log-probs, each answer
    run alone with no padding: the scored policy, computed apart from the loss code."""
    scores = []
    for option in OPTIONS:
        ids = torch.tensor([list(PROMPT) + list(option)])
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
        targets = ids[0, 1:]
        scores.append(float(logp[torch.arange(len(targets)), targets][-len(option):].sum()))
    return torch.log_softmax(torch.tensor(scores, dtype=torch.float64), dim=0)


def kl(p_model, q_model) -> float:
    """KL(p || q) between two scored policies, exactly."""
    log_p, log_q = log_policy(p_model), log_policy(q_model)
    return float((log_p.exp() * (log_p - log_q)).sum())


def choices(model) -> tuple[list[Sample], torch.Tensor]:
    """One sample per answer, each as if sampled from `model` (zero advantage), and
    the probabilities pi(a) that weigh them into an expectation over the choice."""
    log_pi = log_policy(model)
    samples = [Sample(prompt_ids=PROMPT, completion_ids=OPTIONS[a], behaviour_logprobs=(float(log_pi[a]),),
                      temperature=1.0, role=("g", 0), reward=0.0, advantage=0.0, options=OPTIONS, chosen=a)
               for a in range(len(OPTIONS))]
    return samples, log_pi.exp()


def exact_magnet_loss(model, magnet) -> tuple[torch.Tensor, float]:
    """The loss of one scored turn (zero advantage) with the magnet term as the trainer
    builds it in scored mode: the exact KL over the answers. Returns it and the logged KL."""
    sample = choices(model)[0][0]
    log_policies = option_log_policies(model, [sample], pad_id=0)
    with torch.no_grad():
        magnet_policies = option_log_policies(magnet, [sample], pad_id=0)
    new, mask = chosen_logprobs(log_policies, [sample])
    loss, stats = policy_loss(new, mask, [sample], clip=0.2, ref_logp=None, kl_coef=0.0, magnet_coef=ALPHA,
                              magnet_kl=answer_kl(log_policies, magnet_policies))
    return loss, stats.magnet_kl


def expected_sampled_loss(model, magnet, estimator=None) -> tuple[torch.Tensor, float]:
    """The magnet term as free text builds it, on the sampled answer only:
    E_{a ~ pi}[loss of the turn choosing a] (weights held constant, as sampling is),
    and E[logged magnet_kl]. `estimator` replaces the loss's magnet term."""
    samples, pi = choices(model)
    total, logged = torch.zeros((), dtype=torch.float64), 0.0
    for sample, weight in zip(samples, pi):
        new, mask = scored_logprobs(model, [sample], pad_id=0)
        with torch.no_grad():
            ref, _ = scored_logprobs(magnet, [sample], pad_id=0)
        if estimator is None:
            loss, stats = policy_loss(new, mask, [sample], clip=0.2, ref_logp=None, kl_coef=0.0,
                                      magnet_logp=ref, magnet_coef=ALPHA)
            logged += float(weight) * stats.magnet_kl
        else:
            loss = ALPHA * estimator(new, ref).sum()
        total = total + float(weight) * loss
    return total, logged


def finite_difference(objective, weight: torch.Tensor, index, eps: float = 1e-5) -> float:
    with torch.no_grad():
        weight[index] += eps
        up = objective()
        weight[index] -= 2 * eps
        down = objective()
        weight[index] += eps
    return (up - down) / (2 * eps)


INDICES = [(12, 0), (13, 5), (14, 3), (15, 9), (17, 15)]


def assert_reverse_kl_gradient(loss: torch.Tensor, model, magnet) -> None:
    """d loss / d lm_head = alpha * d KL(pi || magnet) / d lm_head, the latter a finite
    difference of the exact KL computed apart from the loss code."""
    (gradient,) = torch.autograd.grad(loss, model.lm_head.weight)
    for index in INDICES:
        numeric = ALPHA * finite_difference(lambda: kl(model, magnet), model.lm_head.weight, index)
        assert float(gradient[index]) == pytest.approx(numeric, rel=1e-3, abs=1e-6), index
    assert float(gradient.abs().max()) > 1e-3  # the check compared something


@pytest.mark.parametrize("build", [exact_magnet_loss, expected_sampled_loss])
def test_no_pull_where_the_policy_is_the_magnet(build):
    model = tiny_model()
    loss, logged = build(model, copy.deepcopy(model))
    gradients = torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)
    assert float(loss.detach()) == 0.0 and logged == 0.0
    # zero up to float32 rounding: the exact term's gradient is sum_a grad pi(a) = 0
    assert all(g is None or float(g.abs().max()) < 1e-6 for g in gradients)


def test_scored_magnet_term_is_the_exact_reverse_kl():
    model = tiny_model()
    magnet = moved(model, 1.0)
    target = kl(model, magnet)
    assert target > 0.05  # the policies differ enough to tell gradients apart
    loss, logged = exact_magnet_loss(model, magnet)
    assert float(loss.detach()) == pytest.approx(ALPHA * target, rel=1e-5)  # zero advantage: the KL term only
    assert logged == pytest.approx(target, rel=1e-5)
    assert_reverse_kl_gradient(loss, model, magnet)


def test_sampled_magnet_pull_has_the_reverse_kl_gradient_in_expectation():
    """Free text's pull (k2 on the sampled tokens), checked on one categorical choice:
    its expected gradient is alpha * grad KL(pi || magnet); its logged k3 value
    averages to that KL."""
    model = tiny_model()
    magnet = moved(model, 1.0)
    loss, logged = expected_sampled_loss(model, magnet)
    assert float(loss.detach()) > 0
    assert logged == pytest.approx(kl(model, magnet), rel=1e-4)  # k3 is unbiased for KL(pi || magnet)
    assert_reverse_kl_gradient(loss, model, magnet)


def test_k3_as_a_loss_would_pull_by_the_forward_kl():
    """Why the sampled pull is not k3 as a loss: its expected gradient is that of
    KL(magnet || pi), another objective (Tang & Munos 2025)."""
    model = tiny_model()
    magnet = moved(model, 1.0)
    loss, _ = expected_sampled_loss(model, magnet, estimator=k3_kl)
    (gradient,) = torch.autograd.grad(loss, model.lm_head.weight)
    forward = [ALPHA * finite_difference(lambda: kl(magnet, model), model.lm_head.weight, i) for i in INDICES]
    reverse = [ALPHA * finite_difference(lambda: kl(model, magnet), model.lm_head.weight, i) for i in INDICES]
    assert [float(gradient[i]) for i in INDICES] == pytest.approx(forward, rel=1e-3, abs=1e-6)
    assert max(abs(f - r) for f, r in zip(forward, reverse)) > 1e-3


@pytest.mark.parametrize("build", [exact_magnet_loss, expected_sampled_loss])
def test_one_step_on_the_magnet_term_lowers_the_kl(build):
    model = tiny_model()
    magnet = moved(model, 1.0)
    before = kl(model, magnet)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss, _ = build(model, magnet)
    loss.backward()
    optimizer.step()
    after = kl(model, magnet)
    assert after < 0.9 * before, (before, after)


def _config(tmp_path, model, **changes):
    base = dict(model=str(model), out=str(tmp_path), games_per_step=2, micro_batch=8, eval_every=0,
                mode="scored", lr=1e-2, magnet_coef=0.2, magnet_every=2, checkpoint_every=100)
    return TrainConfig(**{**base, **changes})


@pytest.mark.parametrize("lora", [True, False])
def test_magnet_logprobs_are_those_of_a_frozen_copy(tiny_model_dir, tmp_path, lora):
    """The swap puts the magnet's weights in and takes them out again: the log-probs
    equal a separate model's holding the magnet's weights, and the policy's weights
    are back, bit for bit, afterwards."""
    trainer = Trainer(_config(tmp_path, tiny_model_dir, lora=lora, dtype="float32", mode="free", max_tokens=4))
    trainer.train_step()  # magnet = the initial weights; the policy moved
    assert len(trainer.magnet) == len(trainer.trainable)
    current = trainer._trainable_weights()
    assert any(not torch.equal(current[n], trainer.magnet[n]) for n in current)
    frozen = copy.deepcopy(trainer.model)
    with torch.no_grad():
        for name, p in frozen.named_parameters():
            if name in trainer.magnet:
                p.copy_(trainer.magnet[name])
    backend = trainer.backend
    prompt = backend.prompt_ids((("user", "Pick a move."),))
    samples = [Sample(prompt, tuple(backend.tokenizer.encode(text)), (), 1.0, ("g", 0), 0.0)
               for text in (" bet", " pass now")]
    got = trainer._magnet_logprobs(samples)
    with torch.no_grad():
        want = sample_logprobs(frozen, samples, backend.pad_id)[0]
        policy = sample_logprobs(trainer.model, samples, backend.pad_id)[0]
    assert torch.equal(got, want)
    assert not torch.allclose(got, policy)
    assert all(torch.equal(p, current[n]) for n, p in trainer.model.named_parameters() if n in current)
    trainer.close()


@pytest.mark.slow
def test_magnet_replaced_every_n_steps_and_resumed(embedded_dir, tmp_path):
    """The embedded model in scored Kuhn poker, magnet_every=2: after the step that
    brings the count to k the magnet is the policy of step 2*floor((k-1)/2); a
    checkpoint at step 3 resumes with that magnet, bit for bit, and keeps it."""
    trainer = Trainer(_config(tmp_path, embedded_dir, games_per_step=1, store_turns=False, lr=1e-3))
    weights = []  # the policy's trainable weights at step k
    for k in range(1, 4):
        weights.append(trainer._trainable_weights())
        metrics = trainer.train_step()
        assert trainer.step == k
        owner = weights[2 * ((k - 1) // 2)]
        assert all(torch.equal(trainer.magnet[n], owner[n]) for n in owner), k
        # the first step of a magnet samples from it; later steps have moved away
        assert (metrics["magnet_kl"] < 1e-6) == (k % 2 == 1), (k, metrics["magnet_kl"])
    assert any(not torch.equal(weights[0][n], weights[2][n]) for n in weights[0])  # the magnet did move
    trainer.save()
    magnet = {n: t.clone() for n, t in trainer.magnet.items()}
    trainer.close()
    resumed = Trainer(_config(tmp_path, embedded_dir, games_per_step=1, store_turns=False, lr=1e-3, out="",
                              resume=str(tmp_path)))
    assert resumed.step == 3
    assert all(torch.equal(resumed.magnet[n], magnet[n]) for n in magnet)
    metrics = resumed.train_step()  # step 4: the same magnet (the policy of step 2), now left behind
    assert all(torch.equal(resumed.magnet[n], magnet[n]) for n in magnet)
    assert metrics["magnet_kl"] > 1e-6, {k: metrics[k] for k in ("samples", "trained", "loss", "magnet_kl", "approx_kl", "grad_norm")}
    resumed.close()


def test_config_refusals(tmp_path):
    with pytest.raises(SparringError, match=r"magnet_coef=-0.1: .* >= 0"):
        TrainConfig(out=str(tmp_path), magnet_coef=-0.1)
    with pytest.raises(SparringError, match="set magnet_every >= 1"):
        TrainConfig(out=str(tmp_path), magnet_every=0)
    stored = TrainConfig(out=str(tmp_path)).to_dict()
    assert (stored["magnet_coef"], stored["magnet_every"]) == (0.0, 10)
