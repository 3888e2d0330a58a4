"""Who the learning policy plays: a weighted mix of opponent *sources*.

- `self`: the policy itself in every seat (SPIRAL); every turn of the game trains.
- `pool`: a past checkpoint of the policy, drawn from the newest `pool_size` saved
  ones, uniformly or by prioritised fictitious self-play (`pfsp_weights`);
  `latest`: the newest checkpoint (a frozen copy). Both load a second HFBackend from
  the checkpoint's saved adapter or model, one at a time. Until a checkpoint exists
  they fall back to `self`.
- anything else is a fixed reference agent built by the AgentFactory (`random`,
  `cfr`, `mcts(simulations=50)`, `hf(path=...)`, ...).

The trainer turns each drawn source into agents (`Trainer._step_agents`). Only the
policy's own turns are training samples; the opponent's are played, not learned from.
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
POOL_SAMPLINGS = ("uniform", "pfsp")
# Memory of the per-checkpoint record: each step that plays a checkpoint first scales
# its (score, games) by this, so the win rate follows the policy as it changes
# (about the last 10 steps' games count).
RECORD_DECAY = 0.9


def pfsp_weights(records: list[tuple[float, float]], prior: tuple[float, float] = (1.0, 2.0)) -> list[float]:
    """Prioritised fictitious self-play (Vinyals et al. 2019, AlphaStar): the
    probability of drawing each checkpoint, proportional to f(p) = (1 - p)^2, where
    p is the policy's win rate against it, so the opponents it still loses to are
    played most ("hard" weighting).

    records: per checkpoint (score, games), score = wins + draws / 2.
    prior: pseudo-(score, games) added to each record, so an unplayed checkpoint
    gets p = 1/2 and a few games do not decide p alone (Laplace's rule by default);
    with it p < 1, so every checkpoint keeps some chance."""
    rates = [(score + prior[0]) / (games + prior[1]) for score, games in records]
    f = [(1.0 - p) ** 2 for p in rates]
    return [v / sum(f) for v in f]


@dataclass
class OpponentMix:
    """Samples one opponent source per game, and holds the checkpoint pool."""

    sources: tuple[str, ...]
    weights: tuple[float, ...]
    pool_size: int = 8
    pool_sampling: str = "uniform"  # how `pool` draws a checkpoint: uniform or pfsp
    checkpoints: list[str] = field(default_factory=list)  # run-relative dirs, oldest first
    # checkpoint -> [score, games] of the policy against it (decayed, see RECORD_DECAY)
    records: dict[str, list[float]] = field(default_factory=dict)

    def __post_init__(self):
        if len(self.sources) != len(self.weights):
            raise SparringError(
                f"{len(self.sources)} opponents but {len(self.weights)} weights: give one weight per opponent, or none"
            )
        if any(w < 0 for w in self.weights) or sum(self.weights) <= 0:
            raise SparringError(f"opponent weights must be >= 0 with a positive sum, got {list(self.weights)}")
        if self.pool_sampling not in POOL_SAMPLINGS:
            raise SparringError(f"pool_sampling '{self.pool_sampling}' unknown: use {' or '.join(POOL_SAMPLINGS)}")

    def sample(self, rng: random.Random, n: int) -> list[str]:
        """The source of each of n games."""
        return rng.choices(self.sources, weights=self.weights, k=n)

    def add_checkpoint(self, path: str) -> None:
        self.checkpoints.append(path)
        del self.checkpoints[: max(0, len(self.checkpoints) - self.pool_size)]
        self.records = {c: r for c, r in self.records.items() if c in self.checkpoints}

    def pick_checkpoint(self, source: str, rng: random.Random) -> str | None:
        """The checkpoint a `pool` or `latest` game is played against; None before
        the first checkpoint (then the game is self-play)."""
        if not self.checkpoints:
            return None
        if source == LATEST:
            return self.checkpoints[-1]
        if self.pool_sampling == "pfsp":
            weights = pfsp_weights([tuple(self.records.get(c, (0.0, 0.0))) for c in self.checkpoints])
            return rng.choices(self.checkpoints, weights=weights)[0]
        return rng.choice(self.checkpoints)

    def record(self, checkpoint: str, score: float, games: int) -> None:
        """Add one step's games against `checkpoint`: the policy scored `score`
        (wins + draws / 2) in `games` games."""
        if checkpoint not in self.checkpoints:
            return
        old_score, old_games = self.records.get(checkpoint, (0.0, 0.0))
        self.records[checkpoint] = [RECORD_DECAY * old_score + score, RECORD_DECAY * old_games + games]

    def win_rates(self) -> dict[str, float]:
        """The policy's recent win rate against each checkpoint it has played."""
        return {c: score / games for c, (score, games) in self.records.items() if games > 0}

    def state_dict(self) -> dict:
        return {"checkpoints": list(self.checkpoints), "records": {c: list(r) for c, r in self.records.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.checkpoints = list(state["checkpoints"])
        self.records = {c: list(r) for c, r in state.get("records", {}).items()}  # older runs kept none


class CheckpointOpponents:
    """Loads checkpoint opponents, keeping only the last one in memory."""

    def __init__(self, load: Callable[[Path], Agent], run_dir: Path):
        self._load = load
        self._run_dir = run_dir
        self._current: tuple[str, Agent] | None = None

    def path(self, checkpoint: str) -> Path:
        return (self._run_dir / checkpoint).resolve()

    def agent(self, checkpoint: str) -> Agent:
        if self._current is None or self._current[0] != checkpoint:
            self.close()
            agent = self._load(self.path(checkpoint))
            agent.name = f"checkpoint:{Path(checkpoint).name}"
            self._current = (checkpoint, agent)
        return self._current[1]

    def close(self) -> None:
        if self._current is not None:
            self._current[1].close()
            self._current = None
