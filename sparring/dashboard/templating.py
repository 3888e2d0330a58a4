"""The pages' templates (Jinja, with autoescape: every value from a run is escaped
unless a template says otherwise, and none does) and the filters they share."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from sparring.dashboard.runs import run_url
from sparring.display import visible

PACKAGE = Path(__file__).parent
TEMPLATES = PACKAGE / "templates"
STATIC = PACKAGE / "static"


def size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def ago(at: float | None, now: float | None = None) -> str:
    if not at:
        return ""
    seconds = max(0.0, (now if now is not None else time.time()) - at)
    for limit, unit, divisor in ((60, "s", 1), (3600, "min", 60), (86400, "h", 3600)):
        if seconds < limit:
            return f"{seconds / divisor:.0f} {unit} ago"
    return f"{seconds / 86400:.0f} days ago"


def clock(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else ""


def shown(text: Any) -> str:
    """Text from a model or a run as a page shows it: control characters drawn
    (`display.visible`), never passed on; the template escapes the rest."""
    return "" if text is None else visible(str(text))


def number(value: Any, digits: int = 3) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def signed(value: Any) -> str:
    return f"{value:+g}" if isinstance(value, (int, float)) else shown(value)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(size=size, ago=ago, clock=clock, shown=shown, number=number, signed=signed,
                       pretty_json=pretty_json)
    env.globals.update(run_url=run_url)
    return env
