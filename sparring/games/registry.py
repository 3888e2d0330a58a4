"""Every playable game, by id. A new game is one module and one line in `_MODULES`.

A reference is `id`, `id(param=value,...)`, `id@version` (refused if the installed
rules have another version), or `openspiel:NAME(params)` for any OpenSpiel game with
a generic text view.
"""

from __future__ import annotations

import importlib
import inspect
import re
from functools import cache
from types import ModuleType

from sparring.errors import SparringError
from sparring.games.core import Game, GameSpec
from sparring.refs import parse_ref

# id -> module; each module has `SPEC: GameSpec` and `make(**params) -> Game`.
_MODULES = {
    "tictactoe": "sparring.games.tictactoe",
    "connect_four": "sparring.games.connect_four",
    "kuhn_poker": "sparring.games.kuhn_poker",
    "leduc_poker": "sparring.games.leduc_poker",
    "liars_dice": "sparring.games.liars_dice",
    "matrix": "sparring.games.matrix",
    "bargaining": "sparring.games.bargaining",
}


def game_ids() -> list[str]:
    return list(_MODULES)


@cache
def _module(game_id: str) -> ModuleType:
    return importlib.import_module(_MODULES[game_id])


def spec_of(game_id: str) -> GameSpec:
    return _module(game_id).SPEC


def all_specs() -> list[GameSpec]:
    return [spec_of(i) for i in _MODULES]


_VERSION_AFTER_NAME = re.compile(r"(?P<name>[^(@]+)@(?P<version>[^(@]+)(?P<params>\(.*\))?")
_VERSION_AFTER_PARAMS = re.compile(r"(?P<name>.+\))@(?P<version>[^()@]+)")


def split_version(ref: str) -> tuple[str, int | str | None]:
    """`kuhn_poker@1` or `matrix@1(rounds=3)` or `matrix(rounds=3)@1` (as runs store
    it, `GameSpec.versioned_ref`) -> (the reference without version, the version)."""
    ref = ref.strip()
    match = _VERSION_AFTER_NAME.fullmatch(ref)
    if match:
        ref, version = match["name"] + (match["params"] or ""), match["version"]
    elif match := _VERSION_AFTER_PARAMS.fullmatch(ref):
        ref, version = match["name"], match["version"]
    else:
        return ref, None
    return ref, int(version) if version.isdigit() else version


def make_game(ref: str) -> Game:
    """Build a game from a user reference; a bad reference raises SparringError."""
    ref, version = split_version(ref)
    if ref.startswith("openspiel:"):
        from sparring.games.openspiel import make_openspiel_game

        return make_openspiel_game(ref[len("openspiel:") :])
    name, params = parse_ref(ref)
    if name not in _MODULES:
        raise SparringError(
            f"unknown game '{name}'. Known games: {', '.join(_MODULES)}; "
            "any OpenSpiel game is playable as openspiel:NAME(params). "
            "Run 'sparring games' to see them all."
        )
    module = _module(name)
    if version is not None and version != module.SPEC.version:
        raise SparringError(
            f"'{ref}' asks for version {version} of {name}, but version "
            f"{module.SPEC.version} is installed: drop '@{version}' or install the "
            "sparring release that had it."
        )
    accepted = list(inspect.signature(module.make).parameters)
    unknown = [key for key in params if key not in accepted]
    if unknown:
        takes = f"its parameters are {', '.join(accepted)}" if accepted else "it takes none"
        os_game = getattr(module.make(), "os_game", None)  # the OpenSpiel game under it, if any
        variants = (f"; for OpenSpiel's variants of it write openspiel:{os_game.get_type().short_name}(key=value,...)"
                    if os_game is not None else "")
        raise SparringError(f"bad parameters for {name}: no parameter {', '.join(map(repr, unknown))}; {takes}{variants}")
    try:
        return module.make(**params)
    except TypeError as exc:
        raise SparringError(f"bad parameters for {name}: {exc}") from None
