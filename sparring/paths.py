"""Where sparring keeps caches: $SPARRING_CACHE_DIR, else $XDG_CACHE_HOME/sparring,
else ~/.cache/sparring."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    root = os.environ.get("SPARRING_CACHE_DIR")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sparring"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
