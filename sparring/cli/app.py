"""The typer application every command registers on, and what commands share."""

from __future__ import annotations

import sys
import time

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from sparring.errors import SparringError

app = typer.Typer(
    help="Language-model agents that learn strategic play by self-play, measured with game-theoretic rigour.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()

# Commands that run no model, so they need not import torch to set its threads.
_NO_MODEL = {"games", "agents", "show", "export", "curves", "report"}


@app.callback()
def settings(
    ctx: typer.Context,
    threads: int = typer.Option(0, "--threads", help="CPU threads for models; 0 picks the cores free now."),
) -> None:
    """Process-wide settings, chosen once here for every command."""
    if ctx.invoked_subcommand not in _NO_MODEL:
        from sparring.backends.threads import use_threads

        use_threads(threads)


# Options that take one or more agents, written as `--players a b` (click options
# take one value each, so the values are spread into `--players a --players b`).
_MULTI_OPTIONS = ("--players", "-p", "--agents")


def spread_multi_options(argv: list[str]) -> list[str]:
    out: list[str] = []
    current, taken = None, 0
    for arg in argv:
        if arg in _MULTI_OPTIONS:
            if current is not None and not taken:
                out.append(current)  # a bare option: let click say a value is missing
            current, taken = arg, 0
            continue
        if current is not None and not arg.startswith("-"):
            out += [current, arg]
            taken += 1
            continue
        if current is not None and not taken:
            out.append(current)
        current = None
        out.append(arg)
    if current is not None and not taken:
        out.append(current)
    return out


def run(argv: list[str]) -> None:
    """Run the command line on `argv`: errors meant for people are printed without a
    traceback."""
    try:
        app(args=spread_multi_options(argv), prog_name="sparring")
    except SparringError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(2)


def default_run_dir(kind: str) -> str:
    """Where a run goes when no --out is given: runs/<kind>-<time>."""
    return f"runs/{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def progress_bar(disable: bool = False) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=disable)
