"""Token rows of different lengths in one batch, as the backend and the trainer run them."""

from __future__ import annotations

import torch


def left_pad(rows: list[list[int]], pad_id: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows right-aligned in one tensor: (ids [B, T], attention mask [B, T])."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row)
        mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


def positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids [B, T] of left-padded rows: each row's first token at 0 (pads at 0 too)."""
    return (mask.cumsum(-1) - 1).clamp(min=0)
