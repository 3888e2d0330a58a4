"""A local transformers model as a backend: batched sampling with per-request seeds,
returning the sampled token ids and their log-probabilities (the behaviour policy
that RL needs), and batched scoring of candidate answers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from sparring.backends.base import Completion, GenerationRequest, ScoreRequest
from sparring.errors import SparringError


@dataclass(frozen=True)
class ScoredOption:
    prompt_token_ids: list[int]
    token_ids: list[int]  # the option's tokens, as scored
    logprobs: list[float]  # log-prob of each option token after the prompt (temperature 1)


def free_cores() -> int:
    """Cores not busy with other work right now. On a shared 2-core machine two
    threads while another process holds a core were 5-10x slower than one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    busy = int(os.getloadavg()[0] + 0.5) if hasattr(os, "getloadavg") else 0
    return max(1, (cores or 1) - busy)


@dataclass(frozen=True)
class HFConfig:
    path: str
    """A local model directory (config.json, weights, tokenizer)."""
    dtype: str = "bfloat16"
    """bfloat16, float16 or float32."""
    device: str = "cpu"
    """torch device: cpu, cuda, cuda:1, ..."""
    threads: int = 0
    """CPU threads; 0 picks the cores that are free now."""
    max_batch: int = 32
    """Most sequences in one forward pass; bigger batches are split."""


class HFBackend:
    def __init__(self, config: HFConfig, name: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(config.path)
        if not (path / "config.json").exists():
            raise SparringError(
                f"no model at {path}: hf(path=...) needs a local model directory with "
                "config.json, weights and a tokenizer (as save_pretrained writes)"
            )
        if config.dtype not in ("bfloat16", "float16", "float32"):
            raise SparringError(f"dtype '{config.dtype}' unknown: use bfloat16, float16 or float32")
        if config.device == "cpu":
            torch.set_num_threads(config.threads or free_cores())
        self.config = config
        self.name = name or path.name
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, config.dtype))
        self.model.to(config.device).eval()
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        self.stop_ids = {self.tokenizer.eos_token_id}
        if self.model.generation_config.eos_token_id is not None:
            eos = self.model.generation_config.eos_token_id
            self.stop_ids |= set(eos if isinstance(eos, list) else [eos])

    # ---- prompts -----------------------------------------------------------------

    def prompt_ids(self, messages: tuple[tuple[str, str], ...]) -> list[int]:
        chat = [{"role": role, "content": content} for role, content in messages]
        return list(
            self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        )

    def _left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        return ids.to(self.config.device), mask.to(self.config.device)

    # ---- generation --------------------------------------------------------------

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        out: list[Completion] = []
        for start in range(0, len(requests), self.config.max_batch):
            out.extend(self._generate_batch(requests[start : start + self.config.max_batch]))
        return out

    @torch.no_grad()
    def _generate_batch(self, requests: list[GenerationRequest]) -> list[Completion]:
        prompts = [self.prompt_ids(r.messages) for r in requests]
        ids, mask = self._left_pad(prompts)  # [B, T]
        batch = len(requests)
        # One generator per request: a request's sample does not depend on its batch.
        generators = [torch.Generator().manual_seed(r.seed) for r in requests]
        temperature = torch.tensor([r.temperature for r in requests])
        top_p = torch.tensor([r.top_p for r in requests])
        limits = [r.max_new_tokens for r in requests]
        sampled: list[list[int]] = [[] for _ in requests]
        logprobs: list[list[float]] = [[] for _ in requests]
        done = [limit <= 0 for limit in limits]

        position = (mask.cumsum(-1) - 1).clamp(min=0)
        output = self.model(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=True)
        cache, next_position = output.past_key_values, position[:, -1:] + 1
        logits = output.logits[:, -1, :].float().cpu()  # [B, V]
        for _ in range(max(limits)):
            tokens = self._sample(logits, temperature, top_p, generators, sampled, logprobs, done)
            for i in range(batch):
                if not done[i] and (tokens[i] in self.stop_ids or len(sampled[i]) >= limits[i]):
                    done[i] = True
            if all(done):
                break
            step = torch.tensor(tokens, device=self.config.device).unsqueeze(1)  # [B, 1]
            mask = torch.cat([mask, torch.ones_like(step)], dim=1)
            output = self.model(
                input_ids=step, attention_mask=mask, position_ids=next_position,
                past_key_values=cache, use_cache=True,
            )
            cache, next_position = output.past_key_values, next_position + 1
            logits = output.logits[:, -1, :].float().cpu()
        return [
            Completion(
                text=self.tokenizer.decode(toks, skip_special_tokens=True),
                token_ids=toks,
                logprobs=lps,
                prompt_token_ids=prompt,
                finish_reason="stop" if toks and toks[-1] in self.stop_ids else "length",
            )
            for toks, lps, prompt in zip(sampled, logprobs, prompts)
        ]

    def _sample(self, logits, temperature, top_p, generators, sampled, logprobs, done) -> list[int]:
        """Draw one token per unfinished row and record its log-probability under the
        distribution it was drawn from (temperature and top-p applied): the
        behaviour policy's log-prob, which importance ratios in RL need."""
        greedy = temperature <= 0
        scaled = logits / torch.where(greedy, torch.ones_like(temperature), temperature).unsqueeze(1)
        logp = torch.log_softmax(scaled, dim=-1)  # [B, V]
        tokens = []
        for i, gen in enumerate(generators):
            if done[i]:
                tokens.append(self.pad_id)
                continue
            row = logp[i]
            if greedy[i]:
                token = int(row.argmax())
            else:
                if top_p[i] < 1.0:
                    row = _nucleus(row, float(top_p[i]))
                token = int(torch.multinomial(row.exp(), 1, generator=gen))
            tokens.append(token)
            sampled[i].append(token)
            logprobs[i].append(float(row[token]))
        return tokens

    # ---- scoring -----------------------------------------------------------------

    def score(self, requests: list[ScoreRequest]) -> list[list[float]]:
        """Sum of log-probs of each option's tokens after the prompt (temperature 1)."""
        return [[sum(option.logprobs) for option in options] for options in self.score_tokens(requests)]

    @torch.no_grad()
    def score_tokens(self, requests: list[ScoreRequest]) -> list[list[ScoredOption]]:
        """Per request, per option: the prompt and option token ids exactly as scored
        and each option token's log-prob (temperature 1). Training on a scored choice
        uses these ids, never a re-tokenisation of the option text."""
        rows, spans, owners = [], [], []
        for r_index, request in enumerate(requests):
            prompt = self.prompt_ids(request.messages)
            for option in request.options:
                option_ids = self.tokenizer(option, add_special_tokens=False)["input_ids"]
                rows.append((prompt, option_ids))
                spans.append(len(option_ids))
                owners.append(r_index)
        scored: list[ScoredOption] = []
        for start in range(0, len(rows), self.config.max_batch):
            chunk, chunk_spans = rows[start : start + self.config.max_batch], spans[start : start + self.config.max_batch]
            ids, mask = self._left_pad([prompt + option for prompt, option in chunk])
            position = (mask.cumsum(-1) - 1).clamp(min=0)
            # Options sit at the end of left-padded rows: only the last `keep` positions
            # predict option tokens, so the vocabulary projection runs on those alone.
            keep = max(chunk_spans) + 1
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=position,
                                logits_to_keep=keep).logits.float()  # [B, keep, V]
            logp = torch.log_softmax(logits[:, :-1], dim=-1)  # position t predicts token t+1
            targets = ids[:, -(keep - 1):] if keep > 1 else ids[:, :0]
            token_logp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # [B, keep-1]
            for i, n_option in enumerate(chunk_spans):
                prompt, option = chunk[i]
                values = token_logp[i, token_logp.shape[1] - n_option :].tolist() if n_option else []
                scored.append(ScoredOption(prompt, option, values))
        result: list[list[ScoredOption]] = [[] for _ in requests]
        for owner, option in zip(owners, scored):
            result[owner].append(option)
        return result

    def close(self) -> None:
        self.model = None


def _nucleus(logp: torch.Tensor, top_p: float) -> torch.Tensor:
    """Renormalised log-probs restricted to the smallest set with mass >= top_p."""
    sorted_logp, order = logp.sort(descending=True)
    cumulative = sorted_logp.exp().cumsum(-1)
    keep_sorted = cumulative - sorted_logp.exp() < top_p
    keep = torch.zeros_like(keep_sorted)
    keep[order] = keep_sorted
    restricted = logp.masked_fill(~keep, float("-inf"))
    return restricted - torch.logsumexp(restricted, dim=-1)
