"""A training step's metrics (`Trainer._step_metrics`) as the line the run prints,
every number named in words, and as flat scalars for TensorBoard."""

from __future__ import annotations

import math
from typing import Any


def flat_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric metrics with nested dicts flattened: {"mean_return/0": ..., "loss": ...}."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(flat_metrics(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = value
    return out


def step_line(m: dict[str, Any], one_game: bool, kl: bool = False, magnet: bool = False) -> str:
    """What a training step prints, every number named in words: the games played
    and how they went, then the update. Seats count from 1, as in replays; with
    several games, returns are pooled over them and baselines are per game and seat.
    `kl` and `magnet`: show the KL to the initial model and to the magnet."""
    def per_seat(values: dict[str, float]) -> str:
        return ", ".join(f"{_seat_label(key, one_game)} {v:+.2f}" for key, v in values.items())

    skipped = m["samples"] - m["trained"]
    played = [
        f"step {m['step']}: {m['games']} games, {m['samples']} turns by the policy",
        f"mean return {per_seat(m['mean_return'])}",
        f"return baseline {per_seat(m['baselines'])}",
        f"invalid answers {m['invalid_rate']:.0%}",
        f"answers {m['completion_len']:.1f} tokens long",
    ]
    update = [
        f"loss {m['loss']:+.4f}",
        f"trained on {m['trained']} of {m['samples']} turns"
        + (f" (the other {skipped} had zero advantage)" if skipped else ""),
        *([f"entropy {m['entropy']:.2f} nats/token"] if math.isfinite(m["entropy"]) else []),
        *([f"KL to the initial model {m['kl']:.4f}"] if kl else []),
        *([f"KL to the magnet {m['magnet_kl']:.4f}"] if magnet else []),
        f"approximate KL of the update {m['approx_kl']:.4f}",
        f"sampler/trainer gap {m['sampler_gap']:.1e} nats/token",
        f"clipped tokens {m['clip_frac']:.0%}",
        f"learning rate {m['lr']:.1e}",
        f"{m['generate_s']:.1f}s playing, {m['train_s']:.1f}s training"
        + (f", {m['sync_s']:.1f}s syncing weights" if "sync_s" in m else ""),
    ]
    return "; ".join(played) + "\n  update: " + ", ".join(update)


def _seat_label(key: str, one_game: bool) -> str:
    """A metrics key, "1" or "kuhn_poker:1" (a 0-based seat, with its game), as
    "seat 2" or "kuhn_poker seat 2"."""
    game, _, seat = key.rpartition(":")
    label = f"seat {int(seat) + 1}"
    return label if one_game or not game else f"{game} {label}"
