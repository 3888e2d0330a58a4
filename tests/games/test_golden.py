"""Each registered game's seeded transcript is checked in under tests/golden/, so a
change of rules or prompt text shows up in review. Regenerate with
SPARRING_UPDATE_GOLDEN=1 python -m pytest tests/games/test_golden.py"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from sparring.games.check import transcript
from sparring.games.registry import game_ids

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SEED = 7


@pytest.mark.parametrize("game_id", game_ids())
def test_golden_transcript(game_id):
    text = transcript(game_id, seed=SEED)
    assert text == transcript(game_id, seed=SEED), "transcript is not deterministic"
    path = GOLDEN / f"{game_id}.txt"
    if os.environ.get("SPARRING_UPDATE_GOLDEN") == "1":
        path.write_text(text)
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; create it with SPARRING_UPDATE_GOLDEN=1 python -m pytest {__file__}")
    expected = path.read_text()
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True), text.splitlines(keepends=True), str(path), "now"
            )
        )
        pytest.fail(
            f"transcript of {game_id} changed; if intended, bump the game's SPEC.version when rules "
            f"or views changed and regenerate with SPARRING_UPDATE_GOLDEN=1\n{diff}"
        )
