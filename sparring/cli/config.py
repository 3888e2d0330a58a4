"""Typed job configs, read from flags or a YAML file and validated in one place."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparring.arena.match import InvalidMoveRule
from sparring.errors import SparringError


@dataclass
class PlayConfig:
    game: str
    """Game reference: an id from `sparring games`, with optional parameters, e.g.
    matrix(preset=stag_hunt,rounds=5), or openspiel:NAME(params)."""
    players: list[str]
    """One agent reference per seat (seats rotate between matches)."""
    games: int = 16
    """Number of matches."""
    seed: int = 0
    """Run seed: the same seed and config give the same transcripts."""
    out: str | None = None
    """Run directory; default runs/<game>-<time>. An existing run with the same
    config is continued."""
    concurrency: int = 32
    """Matches played at once in lockstep (the batch size a model sees)."""
    invalid: InvalidMoveRule = field(default_factory=InvalidMoveRule)
    """What an invalid answer costs: retries, then forfeit or a random move."""

    def __post_init__(self):
        if self.games < 1:
            raise SparringError(f"games must be at least 1, got {self.games}")
        if self.concurrency < 1:
            raise SparringError(f"concurrency must be at least 1, got {self.concurrency}")
        if not self.players:
            raise SparringError("give the players, e.g. --players smollm2 random")


def load_config(cls: type, yaml_path: Path | None, overrides: dict[str, Any]):
    """Build `cls` from an optional YAML file, then flags that were given (not None)."""
    import pydantic
    import yaml

    values: dict[str, Any] = {}
    if yaml_path is not None:
        try:
            loaded = yaml.safe_load(Path(yaml_path).read_text())
        except FileNotFoundError:
            raise SparringError(f"config file {yaml_path} does not exist") from None
        except yaml.YAMLError as exc:
            raise SparringError(f"config file {yaml_path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise SparringError(f"config file {yaml_path} must be a mapping of option: value")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SparringError(f"unknown option(s) {', '.join(unknown)}: known options are {', '.join(sorted(known))}")
    try:
        return pydantic.TypeAdapter(cls).validate_python(values)
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise SparringError(f"bad config: {problems}") from None


def config_dict(config) -> dict[str, Any]:
    return dataclasses.asdict(config)
