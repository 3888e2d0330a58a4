"""The agent contract: a batch of decisions in, one choice per decision out."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from sparring.games.core import State


@dataclass
class Decision:
    """One pending decision of one match, as the arena hands it to an agent."""

    state: State  # the live state; agents must not mutate it (clone first)
    player: int  # the seat to move
    rng: random.Random  # seeded per match and turn, so choices are reproducible
    seed: int  # the same seed as an int, for backends that sample
    rejected: tuple[tuple[str, str], ...] = ()  # on a retry: each earlier answer and why it was rejected
    attempt: int = 0  # 0 for the first try, then 1, 2, ... on retries


@dataclass
class Choice:
    """What an agent decided. `action is None` means an invalid move with `reason`."""

    action: int | None
    reason: str | None = None  # why the answer is not a legal action
    message: str | None = None  # free-text message, for games that allow one
    prompt: str | None = None  # the rendered prompt (LLM agents)
    completion: str | None = None  # the model's raw text
    prompt_token_ids: list[int] = field(default_factory=list)  # the prompt as the model saw it
    token_ids: list[int] = field(default_factory=list)  # sampled completion tokens
    logprobs: list[float] = field(default_factory=list)  # behaviour log-prob per token
    action_logprobs: dict[int, float] | None = None  # scored choice: log pi(a) per legal a
    latency_s: float = 0.0


@runtime_checkable
class Agent(Protocol):
    """Turns decisions into choices; called once per arena tick with all of its
    pending decisions, so batched backends see batches."""

    name: str

    def act(self, decisions: list[Decision]) -> list[Choice]: ...

    def close(self) -> None:
        """Release resources (models, connections). Optional to override."""
