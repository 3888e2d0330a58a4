"""Parse the `name(key=value,...)` references users write for games and agents."""

from __future__ import annotations

import ast
from typing import Any

from sparring.errors import SparringError


class RefError(SparringError, ValueError):
    """A game or agent reference that cannot be read."""


def parse_ref(text: str) -> tuple[str, dict[str, Any]]:
    """Split `name(k=v,...)` into the name and a dict of literal values.

    Values are Python literals (`4`, `0.5`, `'x'`, `true`/`false`); anything else is
    kept as a bare string, so `mcts(rollouts=50)` and `hf(path=/models/x)` both read.
    """
    text = text.strip()
    if "(" not in text:
        if not text:
            raise RefError("empty reference: write a name such as 'kuhn_poker' or 'random'")
        return text, {}
    if not text.endswith(")"):
        raise RefError(f"'{text}': parameters must be closed with ')', as in name(key=value)")
    name, inner = text[: text.index("(")].strip(), text[text.index("(") + 1 : -1]
    params: dict[str, Any] = {}
    for part in _split_top_level(inner):
        if not part.strip():
            continue
        if "=" not in part:
            raise RefError(f"'{text}': parameter '{part.strip()}' needs the form key=value")
        key, raw = (s.strip() for s in part.split("=", 1))
        params[key] = _literal(raw)
    return name, params


def _split_top_level(inner: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in inner:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _literal(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw
