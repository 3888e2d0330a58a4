"""The command line: one command per job, each built from a typed config. Each
module registers its commands on the one typer application (`app.py`)."""

from __future__ import annotations

import sys

from sparring.cli import compete, dashboard, evaluate, evolve, learn, play  # noqa: F401  (they register their commands)
from sparring.cli.app import app, run, spread_multi_options

__all__ = ["app", "main", "spread_multi_options"]


def main() -> None:
    """The `sparring` executable."""
    run(sys.argv[1:])
