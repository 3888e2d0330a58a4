"""Who the learning policy plays: a weighted mix of opponent *sources*.

- `self`: the policy itself in every seat (SPIRAL); every turn of the game trains.
- `pool`: a past checkpoint of the policy, drawn uniformly from the newest
  `pool_size` saved ones; `latest`: the newest checkpoint (a frozen copy). Both load
  a second HFBackend from the checkpoint's saved adapter or model, one at a time.
  Until a checkpoint exists they fall back to `self`.
- anything else is a fixed reference agent built by the AgentFactory (`random`,
  `cfr`, `mcts(simulations=50)`, `hf(path=...)`, ...).

A new source is one branch in `OpponentMix.agent`. Only the policy's own turns are
training samples; the opponent's are played, not learned from.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sparring.agents.base import Agent
from sparring.errors import SparringError

SELF, POOL, LATEST = "self", "pool", "latest"
CHECKPOINT_SOURCES = (POOL, LATEST)


@dataclass
class OpponentMix:
    """Samples one opponent source per game, and holds the checkpoint pool."""

    sources: tuple[str, ...]
    weights: tuple[float, ...]
    pool_size: int = 8
    checkpoints: list[str] = field(default_factory=list)  # run-relative dirs, oldest first

    def __post_init__(self):
        if len(self.sources) != len(self.weights):
            raise SparringError(
                f"{len(self.sources)} opponents but {len(self.weights)} weights: give one weight per opponent, or none"
            )
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise SparringError(f"opponent weights must be >= 0 with a positive sum, got {list(self.weights)}")

    def sample(self, rng: random.Random, n: int) -> list[str]:
        """The source of each of n games."""
        return rng.choices(self.sources, weights=self.weights, k=n)

    def add_checkpoint(self, path: str) -> None:
        self.checkpoints.append(path)
        del self.checkpoints[: max(0, len(self.checkpoints) - self.pool_size)]

    def pick_checkpoint(self, source: str, rng: random.Random) -> str | None:
        """The checkpoint a `pool` or `latest` game is played against; None before
        the first checkpoint (then the game is self-play)."""
        if not self.checkpoints:
            return None
        return self.checkpoints[-1] if source == LATEST else rng.choice(self.checkpoints)

    def state_dict(self) -> dict:
        return {"checkpoints": list(self.checkpoints)}

    def load_state_dict(self, state: dict) -> None:
        self.checkpoints = list(state["checkpoints"])


class CheckpointOpponents:
    """Loads checkpoint opponents, keeping only the last one in memory."""

    def __init__(self, load: Callable[[Path], Agent], run_dir: Path):
        self._load = load
        self._run_dir = run_dir
        self._current: tuple[str, Agent] | None = None

    def agent(self, checkpoint: str) -> Agent:
        if self._current is None or self._current[0] != checkpoint:
            self.close()
            agent = self._load(self._run_dir / checkpoint)
            agent.name = f"checkpoint:{Path(checkpoint).name}"
            self._current = (checkpoint, agent)
        return self._current[1]

    def close(self) -> None:
        if self._current is not None:
            self._current[1].close()
            self._current = None
