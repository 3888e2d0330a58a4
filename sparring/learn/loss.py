"""The policy-gradient loss over sampled completion tokens, with PPO clipping, a
KL penalty to the initial model, a KL pull toward a magnet policy (magnetic mirror
descent), and the vital signs every update logs.

Log-probabilities. Free text: the backend records the behaviour log-prob of each
sampled token under the distribution it was drawn from, logits / temperature (top-p
is refused for training, so no truncation), and new log-probs are computed the same
way, so the PPO ratio exp(logp_new - logp_behaviour) is 1 on the first epoch up to
numerics. Scored choice: the policy is the softmax over the legal answers of their
log-likelihoods divided by the temperature, and the loss takes the log-probability
of the chosen answer under that softmax (one "token" per turn), so its gradient is
the exact policy gradient of the policy that was sampled.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sparring.backends.padding import left_pad, positions
from sparring.learn.rollout import Sample


@dataclass(frozen=True)
class LossStats:
    """Sums over a micro-batch's samples of per-sample token means (the caller
    divides by the batch): what CleanRL and TRL log to show an update going wrong."""

    kl: float  # KL to the reference (k3 estimator), when there is one
    magnet_kl: float  # KL to the magnet (k3 estimator of its value), when there is one
    approx_kl: float  # KL(behaviour || new) estimated as mean((r - 1) - log r) (Schulman 2020)
    clip_frac: float  # share of tokens whose clipped term is the one taken (the clip binds)


def completion_logprobs(model, samples: list[Sample], pad_id: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of each sample's completion tokens under `model` at the sample's
    temperature: ([B, C], mask [B, C]) with C the longest completion; rows are
    right-aligned (left padding), so the completion is the last tokens of a row."""
    ids, attention = left_pad([list(s.prompt_ids) + list(s.completion_ids) for s in samples], pad_id, device)
    _, completion_mask = left_pad([list(s.completion_ids) for s in samples], pad_id, device)
    completion_mask, longest = completion_mask.bool(), completion_mask.shape[1]
    position = positions(attention)
    # Only the last C+1 positions' logits are needed: position t predicts token t+1.
    logits = model(input_ids=ids, attention_mask=attention, position_ids=position,
                   logits_to_keep=longest + 1).logits[:, :-1].float()  # [B, C, V]
    temperature = torch.tensor([s.temperature for s in samples], device=device).view(-1, 1, 1)
    logp = torch.log_softmax(logits / temperature, dim=-1)
    token_logp = logp.gather(-1, ids[:, -longest:].unsqueeze(-1)).squeeze(-1)  # [B, C]
    return token_logp.masked_fill(~completion_mask, 0.0), completion_mask


def option_log_policies(model, samples: list[Sample], pad_id: int, device: str = "cpu") -> list[torch.Tensor]:
    """Each scored sample's log pi over its options under `model`: pi = softmax of
    (sum of each option's token log-probs after the prompt) / temperature. Every
    option of every sample is one row of one forward pass."""
    rows = [Sample(prompt_ids=s.prompt_ids, completion_ids=option, behaviour_logprobs=(), temperature=1.0,
                   role=s.role, reward=0.0) for s in samples for option in s.options]
    token_logp, _ = completion_logprobs(model, rows, pad_id, device)
    scores = token_logp.sum(-1)  # [R]: each option's log-likelihood (padding is 0)
    out, start = [], 0
    for s in samples:
        out.append(torch.log_softmax(scores[start:start + len(s.options)] / s.temperature, dim=-1))
        start += len(s.options)
    return out


def scored_logprobs(model, samples: list[Sample], pad_id: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(chosen) of scored samples under `model`: ([B, 1], mask [B, 1])."""
    log_policies = option_log_policies(model, samples, pad_id, device)
    new_logp = torch.stack([log_pi[s.chosen] for log_pi, s in zip(log_policies, samples)]).unsqueeze(1)
    return new_logp, torch.ones_like(new_logp, dtype=torch.bool)


def sample_logprobs(model, samples: list[Sample], pad_id: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """The log-probs the loss compares with the behaviour's: per completion token for
    free-text samples, of the chosen answer for scored ones (a batch is of one kind)."""
    scored = samples[0].options != ()
    if any((s.options != ()) != scored for s in samples):
        raise ValueError("a batch mixes free-text and scored samples")
    return (scored_logprobs if scored else completion_logprobs)(model, samples, pad_id, device)


def right_aligned(values: list[tuple[float, ...]], longest: int, device: str = "cpu") -> torch.Tensor:
    """Rows of values in a [B, longest] tensor, each row ending at the last column."""
    out = torch.zeros((len(values), longest))
    for i, row in enumerate(values):
        if row:
            out[i, longest - len(row):] = torch.tensor(row)
    return out.to(device)


def k3_kl(new_logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || ref) from tokens sampled by pi (Schulman
    2020): exp(d) - d - 1 with d = log ref - log pi; unbiased, always >= 0. As a loss
    its expected gradient is that of the forward KL(ref || pi) (Tang & Munos 2025,
    arXiv 2506.09477): a pull toward ref all the same, zero where pi = ref."""
    delta = ref_logp - new_logp
    return torch.exp(delta) - delta - 1


def k2_pull(new_logp: torch.Tensor, ref_logp: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Per-token loss whose gradient on tokens sampled by the behaviour policy is in
    expectation that of the reverse KL(pi || ref): r * (log pi - log ref)^2 / 2 with the
    ratio r = pi / behaviour held constant, whose gradient r * (log pi - log ref) *
    grad log pi averages to sum_a pi(a) (log pi(a) - log ref(a)) grad log pi(a) =
    grad KL(pi || ref) (Tang & Munos 2025). In scored mode a turn is one categorical
    choice, so this is exact per turn; over free text it is the per-token term only."""
    return ratio.detach() * 0.5 * (new_logp - ref_logp) ** 2


def policy_loss(new_logp: torch.Tensor, mask: torch.Tensor, samples: list[Sample], clip: float,
                ref_logp: torch.Tensor | None, kl_coef: float, magnet_logp: torch.Tensor | None = None,
                magnet_coef: float = 0.0) -> tuple[torch.Tensor, LossStats]:
    """Sum over samples of the per-token mean of the (clipped) surrogate loss
    -min(r*A, clip(r)*A) + kl_coef * KL(pi || ref) + magnet_coef * KL(pi || magnet),
    r = exp(logp_new - logp_behaviour). The magnet term is magnetic mirror descent's
    alpha * KL(pi, rho) (Sokota et al., ICLR 2023, arXiv 2206.05825), whose gradient
    must be the reverse KL's: it is `k2_pull`; its logged value is k3's, as the
    reference's. The caller divides by the batch size. Per-turn token means keep long
    answers from outweighing short ones (as GRPO)."""
    longest = new_logp.shape[1]
    old = right_aligned([s.behaviour_logprobs for s in samples], longest, new_logp.device)
    advantage = torch.tensor([s.advantage for s in samples], device=new_logp.device).unsqueeze(1)  # [B, 1]
    log_ratio = new_logp - old
    ratio = torch.exp(log_ratio)
    surrogate = ratio * advantage
    binds = torch.zeros_like(ratio, dtype=torch.bool)
    if clip > 0:
        clipped = ratio.clamp(1 - clip, 1 + clip) * advantage
        binds = clipped < surrogate  # min() takes the clipped term: the gradient is cut there
        surrogate = torch.minimum(surrogate, clipped)
    per_token = -surrogate
    kl = k3_kl(new_logp, ref_logp) if ref_logp is not None else torch.zeros_like(new_logp)
    magnet_kl = torch.zeros_like(new_logp)
    if magnet_logp is not None:
        magnet_kl = k3_kl(new_logp, magnet_logp)
        per_token = per_token + magnet_coef * k2_pull(new_logp, magnet_logp, ratio)
    per_token = per_token + kl_coef * kl
    fmask = mask.float()
    lengths = fmask.sum(1).clamp(min=1)

    def token_mean_sum(values: torch.Tensor) -> float:
        return float(((values.detach() * fmask).sum(1) / lengths).sum())

    loss = ((per_token * fmask).sum(1) / lengths).sum()
    stats = LossStats(kl=token_mean_sum(kl), magnet_kl=token_mean_sum(magnet_kl),
                      approx_kl=token_mean_sum((ratio - 1) - log_ratio), clip_frac=token_mean_sum(binds.float()))
    return loss, stats
