"""The agent contract: a batch of decisions in, one choice per decision out."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sparring.games.core import State
from sparring.records import Choice


@dataclass
class Decision:
    """One pending decision of one match, as the arena hands it to an agent."""

    state: State  # the live state; agents must not mutate it (clone first)
    player: int  # the seat to move
    rng: random.Random  # seeded per match and turn, so choices are reproducible
    seed: int  # the same seed as an int, for backends that sample
    rejected: tuple[tuple[str, str], ...] = ()  # on a retry: each earlier answer and why it was rejected
    attempt: int = 0  # 0 for the first try, then 1, 2, ... on retries
    match_seed: int = 0  # the match's seed, the same at all its decisions (a mixture draws its member by it)


@runtime_checkable
class Agent(Protocol):
    """Turns decisions into choices; called once per arena tick with all of its
    pending decisions, so batched backends see batches."""

    name: str

    def act(self, decisions: list[Decision]) -> list[Choice]: ...

    def close(self) -> None:
        """Release resources (models, connections). Optional to override."""
