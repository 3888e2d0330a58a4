"""The typer application every command registers on, and what commands share."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from sparring.errors import SparringError

app = typer.Typer(
    help="Language-model agents that learn strategic play by self-play, measured with game-theoretic rigour.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()

# Commands that run no model, so they need not import torch to set its threads.
_NO_MODEL = {"games", "agents", "show", "export", "curves", "report", "dashboard"}


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"sparring {version('sparring')}")
        raise typer.Exit()


@app.callback()
def settings(
    ctx: typer.Context,
    threads: int = typer.Option(0, "--threads", help="CPU threads for models; 0 picks the cores free now."),
    version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                 help="Print the installed sparring version and exit."),
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
        command = typer.main.get_command(app)
        _literal_help(command)
        command(args=spread_multi_options(argv), prog_name="sparring")
    except SparringError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
        sys.exit(2)


def _literal_help(command) -> None:
    """Help is plain text, but typer reads it as rich markup, where a `[default: 16]`
    written in an option's help is a tag and vanishes: escape every command's and
    option's help so it shows as written."""
    for item in (command, *command.params):
        if getattr(item, "help", None):
            item.help = escape(item.help)
    for sub in getattr(command, "commands", {}).values():
        _literal_help(sub)


WORKERS_HELP = ("Play the matches on this many Ray workers, each building its own agents (pip install "
                "'sparring[ray]'); a local Ray unless --ray-address. The same seed plays the same matches.")
RAY_ADDRESS_HELP = "A Ray cluster to play on (auto, or HOST:6379 of `ray start --head`); one worker unless --workers."


def match_runner(workers: int | None, ray_address: str | None):
    """(how matches are played, what to close after): `arena.match.play_matches` in
    this process, or Ray workers (`arena.workers`) with --workers N or --ray-address."""
    from sparring.arena.match import play_matches

    if not workers and not ray_address:
        return play_matches, lambda: None
    from sparring.arena.workers import Workers

    pool = Workers(workers or 1, ray_address, say=lambda text: console.print(text, markup=False, highlight=False))
    return pool.play, pool.close


def default_run_dir(kind: str) -> str:
    """Where a run goes when no --out is given: runs/<kind>-<date>-<time>-<microseconds>
    (`store.new_run_dir`), so two runs started at once never share a directory."""
    from sparring.store import new_run_dir

    try:
        return str(new_run_dir(Path("runs"), kind))
    except OSError as exc:
        raise SparringError(f"cannot make a run directory under {Path('runs').absolute()} ({exc.strerror or exc}): "
                            "give --out DIR in a place you can write to") from None


def check_output_file(path: Path, force: bool) -> None:
    """Refuse to write `path` over a run store (never, even with --force), a
    directory, or an existing file unless `force`."""
    from sparring.store import DB_NAME

    if path.is_dir():
        raise SparringError(f"{path} is a directory: give a file path, e.g. {path / 'matches.jsonl'}")
    if path.name.startswith(DB_NAME) or _is_sqlite(path):
        raise SparringError(f"{path} is a run store (SQLite): nothing writes over one, not even with --force. "
                            "Choose another output file")
    if path.exists() and not force:
        raise SparringError(f"{path} exists: give --force to replace it, or choose another output file")


def _is_sqlite(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def progress_bar(disable: bool = False) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, disable=disable)


@contextmanager
def match_progress(description: str) -> Iterator[None]:
    """A bar of every match played inside (`arena.match.watching_matches`): its total
    grows as the work plans more (a benchmark's next game, a training step)."""
    from sparring.arena.match import watching_matches

    planned = 0
    with progress_bar() as progress:
        task = progress.add_task(description, total=0)

        def watch(more: int, ended: int) -> None:
            nonlocal planned
            planned += more
            progress.update(task, total=planned, advance=ended)

        with watching_matches(watch):
            yield


def check_voided(voided: dict[int, str], played: int) -> None:
    """Say apart from the results how many matches a backend failure voided
    (`arena.match.void_note`, which raises when most of them were)."""
    from sparring.arena.match import void_note

    note = void_note(voided, played)
    if note:
        console.print(f"[yellow]{escape(note)}[/]; run the same command again to play them.")
