"""The dashboard command: a local web app over run directories (sparring.dashboard)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from sparring.cli.app import app, console


@app.command()
def dashboard(
    runs: Path = typer.Argument(..., help="A directory of runs, searched recursively (e.g. runs/), or one run directory."),
    port: int = typer.Option(8080, "--port", help="Port to serve on; 0 picks a free one."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but the loopback shows every run's prompts and answers to the network, with no password."),
) -> None:
    """Serve a web dashboard over the runs under RUNS at http://127.0.0.1:8080: every
    run with its status, a training run's curves as they grow, match replays turn by
    turn with the model's full text, an evolution's playbook history, and a page to
    play an agent yourself (each match stored as a new run under RUNS/play/). It
    never writes into an existing run, so it can watch runs while they run."""
    from sparring.dashboard.server import serve

    serve(runs, host=host, port=port, say=lambda text: console.print(escape(text)),
          warn=lambda text: Console(stderr=True).print(f"[bold yellow]{escape(text)}[/]"))
