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

from sparring.backends.hf_compat import cache_of, with_cache
from sparring.backends.padding import left_pad, positions
from sparring.learn.rollout import Sample


@dataclass(frozen=True)
class LossStats:
    """Sums over a micro-batch's samples of per-sample token means (the caller
    divides by the batch): what CleanRL and TRL log to show an update going wrong."""

    kl: float  # KL to the reference (k3 estimator), when there is one
    magnet_kl: float  # KL to the magnet (exact in scored mode, else k3), when there is one
    approx_kl: float  # KL(behaviour || new) estimated as mean((r - 1) - log r) (Schulman 2020)
    clip_frac: float  # share of tokens whose clipped term is the one taken (the clip binds)
    gap: float  # mean |log pi_new - log pi_behaviour|: before an update, the sampler/trainer mismatch


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


def option_log_policies(model, samples: list[Sample], pad_id: int, device: str = "cpu",
                        share_head: bool = True) -> list[torch.Tensor]:
    """Each scored sample's log pi over its options under `model`: pi = softmax of
    (sum of each option's token log-probs after the prompt) / temperature.

    Each prompt runs once; its keys and values (still in the autograd graph) are
    gathered for every one of its options, which then run on top of them: an option
    costs its own tokens, not its prompt's again. With `share_head`, the head every
    prompt shares (the system prompt and the rules) runs once for the whole batch;
    False runs each prompt whole (the plain path, the same numbers)."""
    out, mask = _run_prompts(model, [list(s.prompt_ids) for s in samples], pad_id, device, share_head)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]: predicts each option's first token
    owner = torch.tensor([i for i, s in enumerate(samples) for _ in s.options], device=device)  # [R]
    options = [list(o) for s in samples for o in s.options]
    width = max(len(o) for o in options)
    option_ids = torch.full((len(options), width), pad_id, dtype=torch.long, device=device)  # [R, W], right-padded
    option_mask = torch.zeros_like(option_ids)
    for r, option in enumerate(options):
        option_ids[r, :len(option)] = torch.tensor(option)
        option_mask[r, :len(option)] = 1
    scores = first[owner].gather(-1, option_ids[:, :1]).squeeze(-1) * option_mask[:, 0]  # [R]
    if width > 1:  # tokens 2..W, predicted from the option's own earlier tokens on top of its prompt
        cache = cache_of(model, out)
        cache.batch_select_indices(owner)
        rest_mask = option_mask[:, :-1]
        start = mask.sum(-1)[owner].unsqueeze(1)  # each prompt's length: the option's first position
        rest = model(input_ids=option_ids[:, :-1], attention_mask=torch.cat([mask[owner], rest_mask], dim=1),
                     position_ids=start + torch.arange(width - 1, device=device), **with_cache(model, cache)).logits
        rest_logp = torch.log_softmax(rest.float(), dim=-1).gather(-1, option_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        scores = scores + (rest_logp * option_mask[:, 1:]).sum(-1)
    log_policies, begin = [], 0
    for s in samples:
        log_policies.append(torch.log_softmax(scores[begin:begin + len(s.options)] / s.temperature, dim=-1))
        begin += len(s.options)
    return log_policies


_SHARED_HEAD_MIN = 16  # tokens: a shorter common head is not worth a separate pass


def _run_prompts(model, prompts: list[list[int]], pad_id: int, device: str, share_head: bool):
    """The model's output on the left-padded prompts (logits of the last position,
    the cache of every position) and their attention mask [B, T]. The head common to
    every prompt runs once and its cache is repeated for each row; each row's rest
    follows it left-padded, so a row's pads sit between its head and its rest, masked,
    and the positions skip them."""
    head = _common_head(prompts) if share_head and len(prompts) > 1 else 0
    if head < _SHARED_HEAD_MIN:
        ids, mask = left_pad(prompts, pad_id, device)  # [B, P]
        return model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), use_cache=True,
                     logits_to_keep=1), mask
    shared = model(input_ids=torch.tensor([prompts[0][:head]], device=device), use_cache=True, logits_to_keep=1)
    cache = cache_of(model, shared)
    cache.batch_repeat_interleave(len(prompts))
    ids, rest_mask = left_pad([p[head:] for p in prompts], pad_id, device)
    mask = torch.cat([torch.ones((len(prompts), head), dtype=rest_mask.dtype, device=device), rest_mask], dim=1)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)[:, head:], use_cache=True,
                logits_to_keep=1, **with_cache(model, cache))
    return out, mask


def _common_head(prompts: list[list[int]]) -> int:
    """The length of the head all prompts share, leaving every prompt one token of its own."""
    head = min(len(p) for p in prompts) - 1
    first = prompts[0]
    for p in prompts[1:]:
        head = min(head, next((i for i, (a, b) in enumerate(zip(first[:head], p[:head])) if a != b), head))
    return max(head, 0)


def scored_logprobs(model, samples: list[Sample], pad_id: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(chosen) of scored samples under `model`: ([B, 1], mask [B, 1])."""
    return chosen_logprobs(option_log_policies(model, samples, pad_id, device), samples)


def chosen_logprobs(log_policies: list[torch.Tensor], samples: list[Sample]) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(chosen) from each scored sample's log pi over its options: ([B, 1], mask [B, 1])."""
    new_logp = torch.stack([log_pi[s.chosen] for log_pi, s in zip(log_policies, samples)]).unsqueeze(1)
    return new_logp, torch.ones_like(new_logp, dtype=torch.bool)


def answer_kl(log_policies: list[torch.Tensor], ref_log_policies: list[torch.Tensor]) -> torch.Tensor:
    """Exact KL(pi || ref) over each scored turn's answers, sum_a pi(a) (log pi(a) -
    log ref(a)): [B, 1], differentiable in pi. Where pi has nearly settled on one
    answer a sampled estimate sees only that answer and its pull fades with the policy
    gradient; the exact sum still sees the answers pi dropped."""
    return torch.stack([(lp.exp() * (lp - ref)).sum() for lp, ref in zip(log_policies, ref_log_policies)]).unsqueeze(1)


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
    grad KL(pi || ref) (Tang & Munos 2025). For free text, where only the sampled
    tokens are scored; per token, it leaves out what a token does to the KL of the
    tokens after it (their second pitfall)."""
    return ratio.detach() * 0.5 * (new_logp - ref_logp) ** 2


def policy_loss(new_logp: torch.Tensor, mask: torch.Tensor, samples: list[Sample], clip: float,
                ref_logp: torch.Tensor | None, kl_coef: float, magnet_logp: torch.Tensor | None = None,
                magnet_coef: float = 0.0, magnet_kl: torch.Tensor | None = None) -> tuple[torch.Tensor, LossStats]:
    """Sum over samples of the per-token mean of the (clipped) surrogate loss
    -min(r*A, clip(r)*A) + kl_coef * KL(pi || ref) + magnet_coef * KL(pi || magnet),
    r = exp(logp_new - logp_behaviour). The caller divides by the batch size.
    Per-turn token means keep long answers from outweighing short ones (as GRPO).

    The magnet term is magnetic mirror descent's alpha * KL(pi, rho) (Sokota et al.,
    ICLR 2023, arXiv 2206.05825), whose gradient must be the reverse KL's. Scored
    turns give it exactly: `magnet_kl` ([B, 1], `answer_kl`). Free text gives the
    magnet's log-probs of the sampled tokens, `magnet_logp`: the pull is `k2_pull`,
    its logged value k3's, as the reference's."""
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
    if magnet_kl is not None:
        per_token = per_token + magnet_coef * magnet_kl
    elif magnet_logp is not None:
        magnet_kl = k3_kl(new_logp, magnet_logp)
        per_token = per_token + magnet_coef * k2_pull(new_logp, magnet_logp, ratio)
    else:
        magnet_kl = torch.zeros_like(new_logp)
    per_token = per_token + kl_coef * kl
    fmask = mask.float()
    lengths = fmask.sum(1).clamp(min=1)

    def token_mean_sum(values: torch.Tensor) -> float:
        return float(((values.detach() * fmask).sum(1) / lengths).sum())

    loss = ((per_token * fmask).sum(1) / lengths).sum()
    stats = LossStats(kl=token_mean_sum(kl), magnet_kl=token_mean_sum(magnet_kl),
                      approx_kl=token_mean_sum((ratio - 1) - log_ratio), clip_frac=token_mean_sum(binds.float()),
                      gap=token_mean_sum(log_ratio.abs()))
    return loss, stats
