"""The backend contract: one call generates a whole batch.

Retries, rate limits, timeouts and caching live inside each backend, once.
A failed request comes back as a `Completion` with `error` set, never as an
exception, so one bad request cannot sink a batch of matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class GenerationRequest:
    messages: tuple[tuple[str, str], ...]  # (role, content) chat turns
    max_new_tokens: int = 64
    temperature: float = 1.0  # 0 means greedy
    top_p: float = 1.0
    seed: int = 0  # per-request seed, so a batch's samples do not depend on batching


@dataclass
class Completion:
    text: str
    token_ids: list[int] = field(default_factory=list)  # sampled ids, never re-tokenised
    logprobs: list[float] = field(default_factory=list)  # log-prob of each sampled id
    prompt_token_ids: list[int] = field(default_factory=list)
    finish_reason: str = "stop"  # "stop", "length" or "error"
    error: str | None = None
    weights_version: str | None = None  # the policy version that sampled it, where the backend knows it
    usage: tuple[int, int] | None = None  # (prompt, completion) tokens as a server counted them (API backends)


@dataclass(frozen=True)
class ScoreRequest:
    """Score each option as a continuation of the prompt (scored-choice agents)."""

    messages: tuple[tuple[str, str], ...]
    options: tuple[str, ...]


@dataclass(frozen=True)
class ScoredOption:
    """One option as scored: the ids exactly as the model saw them (training on a
    scored choice uses these, never a re-tokenisation of the text)."""

    prompt_token_ids: list[int]
    token_ids: list[int]  # the option's tokens
    logprobs: list[float]  # log-prob of each option token after the prompt (temperature 1)
    weights_version: str | None = None  # the policy version that scored it, where the backend knows it

    @property
    def total(self) -> float:
        """Log-likelihood of the whole option."""
        return sum(self.logprobs)


@runtime_checkable
class Backend(Protocol):
    name: str

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]: ...

    def score(self, requests: list[ScoreRequest]) -> list[list[ScoredOption]]:
        """Per request, per option: its tokens and their log-likelihood after the
        prompt. Backends that cannot score raise SparringError saying so."""

    def close(self) -> None: ...
