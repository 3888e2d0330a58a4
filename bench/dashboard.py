"""Dashboard response times over a large run.

Writes a run of tic-tac-toe matches with 100,000 turns in all straight through the
store (`RunStore.write_match`, synthetic records: legal random games, each answer a
model-like prompt and completion, one in ten rejected and retried), starts the
dashboard on a free loopback port, and times over HTTP the runs page, the run's
page, a replay page and the replay's JSON: the first request (nothing cached) and
the median of 20. The target is under 200 ms per page.

    python bench/dashboard.py                     # 100,000 turns in a temporary directory
    python bench/dashboard.py --turns 20000 --keep runs/bench-dashboard
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from sparring.dashboard.app import create_app
from sparring.dashboard.runs import RunsRoot, run_url
from sparring.dashboard.server import bind
from sparring.games.registry import make_game
from sparring.records import Choice, MatchResult, Sampling, Turn
from sparring.store import RunStore

TARGET_MS = 200.0
REQUESTS = 20


def synthetic_match(index: int, game, rng: random.Random) -> MatchResult:
    """A legal random tic-tac-toe game answered like a language model would: the
    prompt is the view with instructions, the completion some reasoning and an answer
    line; one answer in ten is rejected first and retried."""
    state = game.new_initial_state(random.Random(index))
    turns: list[Turn] = []
    seats = ("model", "random")
    decision = 0
    while not state.is_terminal():
        seat, legal = state.current_player(), state.legal_actions()
        view = state.view(seat)
        prompt = f"You are a skilled game player.\n\n{view}\n\nThink briefly, then answer."
        logprobs = {a: -math.log(len(legal)) for a in legal}
        sampling = Sampling("free", 1.0)
        retried = rng.random() < 0.1
        if retried:
            turns.append(Turn(decision, 0, seat, seats[seat], view, Choice(
                action=None, reason="no legal cell named", prompt=prompt, completion="I would take the centre.",
                sampling=sampling), valid=False, reason="no legal cell named"))
        action = rng.choice(legal)
        completion = f"The open lines favour cell {action + 1}; it blocks and threatens.\nAnswer: {action + 1}"
        choice = Choice(action=action, prompt=prompt, completion=completion, action_logprobs=logprobs,
                        token_ids=tuple(range(24)), logprobs=tuple(-0.5 for _ in range(24)), sampling=sampling)
        turns.append(Turn(decision, int(retried), seat, seats[seat], view, choice,
                          valid=True, action_name=state.action_name(action)))
        state.apply(action)
        decision += 1
    return MatchResult(index=index, game=state.spec.versioned_ref, seed=index, seats=seats,
                       returns=tuple(state.returns()), turns=tuple(turns), wall_s=0.01)


def write_run(run_dir: Path, turns: int) -> tuple[int, float]:
    """(matches, seconds) of writing a run of at least `turns` turns."""
    start = time.perf_counter()
    store = RunStore(run_dir, create=True)
    store.start({"game": "tictactoe", "players": ["model", "random"], "games": 0}, kind="play")
    game, rng = make_game("tictactoe"), random.Random(0)
    written = index = 0
    while written < turns:
        match = synthetic_match(index, game, rng)
        store.write_match(match)
        written += len(match.turns)
        index += 1
    store.set_meta("config", {"game": "tictactoe", "players": ["model", "random"], "games": index})
    store.close()
    return index, time.perf_counter() - start


def time_requests(client: httpx.Client, url: str) -> tuple[float, float]:
    """(first, median of REQUESTS after it) in milliseconds; every answer must be 200."""
    times = []
    for _ in range(REQUESTS + 1):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}: {response.text[:300]}")
    return times[0], statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=100_000, help="Turns in the run [default: 100000].")
    parser.add_argument("--keep", type=Path, default=None, help="Write the run here and keep it (a new directory).")
    args = parser.parse_args()

    root = args.keep.parent if args.keep else Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    run_dir = args.keep or root / "big"
    try:
        matches, seconds = write_run(run_dir, args.turns)
        print(f"wrote {matches:,} matches, {args.turns:,}+ turns, in {seconds:.1f} s "
              f"({(run_dir / 'run.sqlite').stat().st_size / 2**20:.0f} MB)")
        sock = bind("127.0.0.1", 0)
        server = uvicorn.Server(uvicorn.Config(create_app(RunsRoot.at(root)), log_level="warning", lifespan="off"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        name = RunsRoot.at(root).name_of(run_dir.resolve())
        pages = {"runs page": "/", "run page": run_url(name), "replay page": run_url(name, "match", matches // 2),
                 "replay JSON": "/api" + run_url(name, "match", matches // 2)}
        print(f"{'':14}{'first':>10}{'median of ' + str(REQUESTS):>16}   target < {TARGET_MS:.0f} ms")
        with httpx.Client(base_url=base, timeout=60) as client:
            for label, url in pages.items():
                first, median = time_requests(client, url)
                verdict = "ok" if median < TARGET_MS else "SLOW"
                print(f"{label:14}{first:>8.1f} ms{median:>13.1f} ms   {verdict}")
        server.should_exit = True
        thread.join(10)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
