"""A local transformers model as a backend: batched sampling with per-request seeds,
returning the sampled token ids and their log-probabilities (the behaviour policy
that RL needs), and batched scoring of candidate answers.

Two paths behind `HFConfig.fast`: the plain path below (left-padded batch, an
ordinary transformers cache, one decode step at a time) is the reference; the fast
path (hf_fast.py) reuses keys and values across calls and gives the same samples
(tests/backends/test_hf_paths.py).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from sparring.backends.base import Completion, GenerationRequest, ScoredOption, ScoreRequest
from sparring.backends.hf_compat import cache_of, quiet_loading, with_cache
from sparring.backends.hf_fast import FastPath, use_decode_attention
from sparring.backends.padding import left_pad, positions
from sparring.backends.sampling import sample_tokens
from sparring.errors import SparringError

BASE_WEIGHTS = "base"  # the weights version of a model as loaded from disk


def resolve_model_dir(path: str | Path) -> Path:
    """The model directory a path means: a model (config.json) or a LoRA adapter
    (adapter_config.json) directory as is; a training checkpoint (its `policy`
    folder); or a checkpoints/latest pointer file (the checkpoint it names)."""
    path = Path(path)
    if path.is_file() and path.name == "latest":
        path = path.parent / path.read_text().strip()
    if (path / "policy").is_dir():
        path = path / "policy"
    if (path / "config.json").exists() or (path / "adapter_config.json").exists():
        return path
    raise SparringError(
        f"no model at {path}: give a model directory with config.json and weights (as "
        "save_pretrained writes), a LoRA adapter directory, or a training checkpoint "
        "such as runs/t1/checkpoints/latest"
    )


@functools.cache
def native_dtype() -> str:
    """The dtype to run and train a model in on this machine's CPU: bfloat16
    where the CPU has bfloat16 arithmetic (AVX512-BF16 or AMX), else float32. Without
    it torch emulates bfloat16, many times slower than float32 (measured on an AVX2
    CPU: a forward and backward over Kuhn poker's 12 states ran past 14 minutes in
    bfloat16, against 27 s in float32)."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = info.read()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


def check_device(device: str) -> None:
    """Refuse a torch device that is misspelt or not on this machine, saying which are."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise SparringError(f"device {device!r} unknown: use cpu, cuda or cuda:N (a GPU), or mps (Apple)") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not count:
            raise SparringError(f"device '{device}': this machine's torch sees no CUDA GPU; use device=cpu")
        if parsed.index is not None and parsed.index >= count:
            raise SparringError(f"device '{device}': there are {count} GPU(s), cuda:0 to cuda:{count - 1}")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise SparringError(f"device '{device}': MPS (Apple GPU) is not available here; use device=cpu")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise SparringError(f"device '{device}' is not one sparring runs models on: use cpu, cuda, cuda:N or mps")


def weights_version_of(model_dir: Path) -> str:
    """A training checkpoint's name (step-12 for checkpoints/step-12/policy) for
    its policy folder; BASE_WEIGHTS for any other model directory."""
    return model_dir.parent.name if model_dir.name == "policy" else BASE_WEIGHTS


@dataclass(frozen=True)
class HFConfig:
    path: str
    """A local model directory (config.json, weights, tokenizer)."""
    dtype: str = "bfloat16"
    """bfloat16, float16 or float32."""
    device: str = "cpu"
    """torch device: cpu, cuda, cuda:1, ..."""
    max_batch: int = 32
    """Most sequences in one forward pass; bigger batches are split."""
    fast: bool = True
    """Reuse keys and values across calls and decode in place (hf_fast.py); False
    runs the plain reference path, which gives the same samples, slower."""

    def __post_init__(self):
        if self.dtype not in ("bfloat16", "float16", "float32"):
            raise SparringError(f"dtype '{self.dtype}' unknown: use bfloat16, float16 or float32")
        if isinstance(self.max_batch, bool) or not isinstance(self.max_batch, int) or self.max_batch < 1:
            raise SparringError(f"max_batch must be a whole number of sequences >= 1, got {self.max_batch!r}")
        check_device(self.device)


class HFBackend:
    def __init__(self, config: HFConfig, name: str | None = None):
        path = resolve_model_dir(config.path)
        self.config = config
        self.name = name or path.name
        self.tokenizer, self.model = _load(path, getattr(torch, config.dtype))
        self.model.to(config.device).eval()
        self.weights_version: str = weights_version_of(path)
        """The version of the weights the model holds. Whoever changes the weights or
        swaps `model` sets a new one (a trainer: "step-12"); keys and values cached
        under another version are then dropped, and every completion and scored
        option carries the version that produced it."""
        self._cached_version = self.weights_version  # the version the fast path's keys and values belong to
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        self.stop_ids = {self.tokenizer.eos_token_id}
        if self.model.generation_config.eos_token_id is not None:
            eos = self.model.generation_config.eos_token_id
            self.stop_ids |= set(eos if isinstance(eos, list) else [eos])
        self._fast = self._new_fast_path() if config.fast else None
        self._fasts: dict[str, FastPath] = {}  # with adapters attached: each one's fast path, by name
        self._loaded_version = self.weights_version  # of the weights as loaded, which `use_adapter(None)` plays
        if self._fast is not None and config.device == "cpu":
            use_decode_attention(self.model)

    def _new_fast_path(self) -> FastPath:
        return FastPath(self.pad_id, self.config.device, self.config.max_batch)

    def prompt_ids(self, messages: tuple[tuple[str, str], ...]) -> list[int]:
        chat = [{"role": role, "content": content} for role, content in messages]
        return list(
            self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
        )

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        self._follow_weights_version()
        prompts = [self.prompt_ids(r.messages) for r in requests]
        if self._fast is not None:
            answers = self._fast.generate(self.model, prompts, requests, self.stop_ids)
        else:
            answers, size = [], self.config.max_batch
            for start in range(0, len(requests), size):
                answers += plain_generate(self.model, prompts[start : start + size], requests[start : start + size],
                                          self.pad_id, self.stop_ids, self.config.device)
        return [
            Completion(
                text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                token_ids=tokens,
                logprobs=logprobs,
                prompt_token_ids=prompt,
                finish_reason="stop" if tokens and tokens[-1] in self.stop_ids else "length",
                weights_version=self.weights_version,
            )
            for (tokens, logprobs), prompt in zip(answers, prompts)
        ]

    def score(self, requests: list[ScoreRequest]) -> list[list[ScoredOption]]:
        """Per request, per option: the prompt and option token ids exactly as scored
        and each option token's log-prob (temperature 1)."""
        self._follow_weights_version()
        rows, owners = [], []  # (prompt ids, option ids), and the request each row is from
        for r_index, request in enumerate(requests):
            prompt = self.prompt_ids(request.messages)
            for option in request.options:
                rows.append((prompt, self.tokenizer(option, add_special_tokens=False)["input_ids"]))
                owners.append(r_index)
        if not rows:
            return [[] for _ in requests]
        if self._fast is not None:
            logprobs = self._fast.score(self.model, rows)
        else:
            logprobs, size = [], self.config.max_batch
            for start in range(0, len(rows), size):
                logprobs += plain_score(self.model, rows[start : start + size], self.pad_id, self.config.device)
        result: list[list[ScoredOption]] = [[] for _ in requests]
        for owner, (prompt, option), values in zip(owners, rows, logprobs):
            result[owner].append(ScoredOption(prompt, option, values, weights_version=self.weights_version))
        return result

    def add_adapter(self, name: str, path: str | Path) -> None:
        """Attach the LoRA adapter at `path` (an adapter directory or a training
        checkpoint) under `name`, beside those attached before: the base model stays
        in memory once and each adapter adds a few MB (peft's multiple adapters).
        `use_adapter` picks the one that plays."""
        from peft import PeftModel

        adapter_dir = resolve_model_dir(path)
        if not (adapter_dir / "adapter_config.json").exists():
            raise SparringError(f"{path} is not a LoRA adapter (no adapter_config.json): only adapters of "
                                f"one base model can share it; play a full model as hf(path={path})")
        if name == self._loaded_version or name in self.adapters:
            raise SparringError(f"an adapter named '{name}' is already attached: give each a new name")
        with quiet_loading():
            if isinstance(self.model, PeftModel):
                self.model.load_adapter(adapter_dir, adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, adapter_dir, adapter_name=name)
        self.model.to(device=self.config.device, dtype=getattr(torch, self.config.dtype)).eval()
        self.use_adapter(None)

    @property
    def adapters(self) -> list[str]:
        """The names of the attached adapters."""
        return list(getattr(self.model, "peft_config", {}))

    def use_adapter(self, name: str | None) -> None:
        """Play with the attached adapter `name` from now on, or with the base model
        alone (None). Each keeps its own keys and values on the fast path, so
        switching back and forth between batches recomputes nothing."""
        if name is None:
            if self.adapters:
                self.model.base_model.disable_adapter_layers()
        else:
            if name not in self.adapters:
                raise SparringError(f"no adapter named '{name}' is attached: add it with add_adapter first")
            self.model.base_model.enable_adapter_layers()
            self.model.set_adapter(name)
        if self._fast is not None and not self._fasts:  # the first switch: what is cached belongs to the loaded weights
            self._fasts[self._cached_version] = self._fast
        self.weights_version = name or self._loaded_version
        if self._fast is not None:
            self._fast = self._fasts.setdefault(self.weights_version, self._new_fast_path())
            self._cached_version = self.weights_version

    def _follow_weights_version(self) -> None:
        """Drop keys and values cached under other weights than `weights_version`'s.
        A swapped-in model gets the fast decoding attention too."""
        if self.weights_version != self._cached_version:
            if self._fast is not None:
                self._fast.clear()
                if self.config.device == "cpu":
                    use_decode_attention(self.model)
            self._cached_version = self.weights_version

    def close(self) -> None:
        for fast in [self._fast, *self._fasts.values()]:
            if fast is not None:
                fast.clear()
        self.model = None


class AdapterView:
    """One adapter attached to a shared HFBackend, as a backend of its own: each call
    plays that adapter, or the base model alone for None (`HFBackend.use_adapter`)."""

    def __init__(self, backend: HFBackend, adapter: str | None):
        self.backend, self.adapter = backend, adapter
        self.name = adapter or backend.name

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        self.backend.use_adapter(self.adapter)
        return self.backend.generate(requests)

    def score(self, requests: list[ScoreRequest]) -> list[list[ScoredOption]]:
        self.backend.use_adapter(self.adapter)
        return self.backend.score(requests)

    def close(self) -> None:
        """Nothing: the shared backend is closed by whoever loaded it."""


def _load(path: Path, dtype: torch.dtype):
    """(tokenizer, model) of a model directory, or of a LoRA adapter directory: its
    base model with the adapter merged in, and the base model's tokenizer unless
    the adapter has one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter = path / "adapter_config.json"
    if not adapter.exists():
        with quiet_loading():
            return AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    from peft import AutoPeftModelForCausalLM

    base = json.loads(adapter.read_text())["base_model_name_or_path"]
    has_tokenizer = (path / "tokenizer_config.json").exists()
    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(path if has_tokenizer else base)
        return tokenizer, AutoPeftModelForCausalLM.from_pretrained(path, dtype=dtype).merge_and_unload()


# ---- the plain path: the reference the fast path is tested against -------------------


@torch.no_grad()
def plain_generate(model, prompts: list[list[int]], requests: list[GenerationRequest], pad_id: int,
                   stop_ids: set[int], device: str) -> list[tuple[list[int], list[float]]]:
    """Per request, the sampled token ids and their log-probs: the prompts
    left-padded and run in one forward pass, then one token per row and step, every
    row staying in the batch until the last one stops."""
    ids, mask = left_pad(prompts, pad_id, device)  # [B, T]
    position = positions(mask)
    generators = [torch.Generator().manual_seed(r.seed) for r in requests]  # a row's sample does not depend on its batch
    sampled: list[list[int]] = [[] for _ in requests]
    logprobs: list[list[float]] = [[] for _ in requests]
    active = [i for i, r in enumerate(requests) if r.max_new_tokens > 0]
    cache = None
    while active:
        output = model(input_ids=ids, attention_mask=mask, position_ids=position,
                       **with_cache(model, cache), use_cache=True, logits_to_keep=1)
        cache = cache_of(model, output)
        logits = output.logits[:, -1, :].float().cpu()  # [B, V]
        tokens, token_logprobs = sample_tokens(logits[active], [requests[i] for i in active], [generators[i] for i in active])
        for i, token, logprob in zip(active, tokens, token_logprobs):
            sampled[i].append(token)
            logprobs[i].append(logprob)
        active = [i for i in active if sampled[i][-1] not in stop_ids and len(sampled[i]) < requests[i].max_new_tokens]
        # Every row runs its last token (a finished row's output is never read).
        ids = torch.tensor([[row[-1] if row else pad_id] for row in sampled], device=device)  # [B, 1]
        mask = torch.cat([mask, mask.new_ones((len(prompts), 1))], dim=1)
        position = position[:, -1:] + 1
    return list(zip(sampled, logprobs))


@torch.no_grad()
def plain_score(model, rows: list[tuple[list[int], list[int]]], pad_id: int, device: str) -> list[list[float]]:
    """Per (prompt ids, option ids) row, each option token's log-prob after the
    prompt and the option tokens before it: one forward pass over the left-padded rows."""
    ids, mask = left_pad([prompt + option for prompt, option in rows], pad_id, device)  # [B, T]
    keep = max(len(option) for _, option in rows) + 1  # options end the rows: the positions that predict them
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask), logits_to_keep=keep).logits
    logp = torch.log_softmax(logits.float().cpu(), dim=-1)  # [B, keep, V]; position t predicts token t + 1
    return [[float(logp[row, keep - len(option) - 1 + k, token]) for k, token in enumerate(option)]
            for row, (_, option) in enumerate(rows)]
