"""Matches on Ray workers (a local Ray, `ray.init(num_cpus=2)`): a language model
(the tiny Llama, choosing by its scores) against a scripted agent plays the same transcripts
on 1 worker, on 2 workers and in this process; results stream back to a store
as chunks end; agents that cannot be rebuilt on a worker are refused."""

import dataclasses

import pytest

from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan, watching_matches
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.store import RunStore

ray = pytest.importorskip("ray", reason="Ray is the ray extra: pip install -e '.[ray]'")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def plan_of(tiny_model_dir, indices):
    game = make_game("kuhn_poker")
    factory = AgentFactory(game)
    # Scored choice: each legal answer scored by the model, one drawn by the decision's
    # seed; a batch of another size can move a score by 1e-6, never the draw.
    agents = [factory.make(f"hf(path={tiny_model_dir},mode=scored,temperature=1.0,dtype=float32)"),
              factory.make("random")]
    return rotating_plan(game, agents, indices, run_seed=3)


def transcripts(results):
    """Everything a match is: seats, returns, and each attempt's text and move
    (timings aside)."""
    return [(r.index, r.seats, r.returns, r.forfeit_by,
             [(t.seat, t.valid, t.action_name, t.reason, t.choice.completion, t.choice.token_ids)
              for t in r.turns]) for r in results]


def test_one_worker_and_two_play_the_matches_this_process_plays(local_ray, tiny_model_dir):
    from sparring.arena.workers import Workers

    rule = InvalidMoveRule(retries=1, then="random")
    here = play_matches(plan_of(tiny_model_dir, range(12)), rule, concurrency=12)
    assert any(t.choice.action_logprobs for r in here for t in r.turns)  # the model chose by its scores
    spread = []
    for count in (1, 2):
        workers = Workers(count)
        try:
            spread.append(workers.play(plan_of(tiny_model_dir, range(12)), rule, concurrency=4))
            pids = {ray.get(actor.pid.remote()) for actor in workers.actors}
        finally:
            workers.close()
    assert transcripts(spread[0]) == transcripts(here)
    assert transcripts(spread[1]) == transcripts(here)
    assert len(pids) == 2  # two processes played


def test_results_reach_the_store_and_the_watchers_as_chunks_end(local_ray, tmp_path):
    from sparring.arena.workers import Workers

    game = make_game("tictactoe")
    factory = AgentFactory(game)
    plan = rotating_plan(game, [factory.make("random"), factory.make("perfect")], range(10), run_seed=0)
    store = RunStore(tmp_path, create=True)
    seen = []
    workers = Workers(2)
    try:
        with watching_matches(lambda planned, ended: seen.append((planned, ended))):
            results = workers.play(plan, concurrency=3, on_match_end=store.write_match)
    finally:
        workers.close()
    assert [r.index for r in results] == list(range(10))
    assert sorted(store.finished_indices()) == list(range(10))
    assert seen[0] == (10, 0) and seen[1:] == [(0, 1)] * 10
    here = play_matches(rotating_plan(game, [factory.make("random"), factory.make("perfect")], range(10), 0))
    assert [dataclasses.replace(r.record, wall_s=0) for r in results] == \
        [dataclasses.replace(r.record, wall_s=0) for r in here]


def test_a_killed_worker_loses_nothing_and_repeats_nothing(local_ray, tiny_model_dir, tmp_path):
    """A worker's process killed mid-run: its unfinished chunks play again on the
    other worker; the store holds every match once, as one process plays them."""
    import os
    import signal

    from sparring.arena.workers import Workers

    rule = InvalidMoveRule(retries=1, then="random")
    store, said = RunStore(tmp_path, create=True), []
    workers = Workers(2, say=said.append)
    try:
        victim = ray.get(workers.actors[1].pid.remote())

        def on_end(result):
            store.write_match(result)  # a match stored twice would fail here (one row per index)
            if len(store.finished_indices()) == 1:
                os.kill(victim, signal.SIGKILL)  # the victim has chunks queued still: 6 each, 2 matches a chunk

        results = workers.play(plan_of(tiny_model_dir, range(24)), rule, concurrency=2, on_match_end=on_end)
        survivors = len(workers.actors)
    finally:
        workers.close()
    assert survivors == 1 and len(said) >= 1 and "(1 left); its 2 unfinished matches play again" in said[0]
    assert sorted(store.finished_indices()) == list(range(24))
    here = play_matches(plan_of(tiny_model_dir, range(24)), rule, concurrency=24)
    assert transcripts(results) == transcripts(here)


def test_agents_a_worker_cannot_build_are_refused(local_ray):
    from sparring.agents.human import HumanAgent
    from sparring.agents.scripted import RandomAgent
    from sparring.arena.workers import Workers

    game = make_game("tictactoe")
    workers = Workers(1)
    try:
        with pytest.raises(SparringError, match="a person cannot play on a worker"):
            workers.play(rotating_plan(game, [HumanAgent(), RandomAgent()], range(2), 0))
        named = RandomAgent()
        named.name = "my-own-random"  # not a reference the registry knows
        with pytest.raises(SparringError, match="unknown agent 'my-own-random'"):
            workers.play(rotating_plan(game, [named, RandomAgent()], range(2), 0))
    finally:
        workers.close()
    with pytest.raises(SparringError, match="give 1 or more workers"):
        Workers(0)
    with pytest.raises(SparringError, match="need 3 CPUs, and the Ray cluster has 2 free"):
        Workers(3)


def _sparring(*args, cwd):
    import subprocess
    import sys
    from pathlib import Path

    command = [str(Path(sys.executable).with_name("sparring")), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_play_and_tournament_on_workers_store_what_one_process_stores(tmp_path):
    """The commands as a user runs them: --workers 2 (a local Ray of its own) against
    the same command in one process, match by match."""
    for args in (["play", "tictactoe", "--players", "random", "perfect", "--games", "6"],
                 ["tournament", "--game", "kuhn_poker", "--agents", "random", "always_bet", "cfr(iterations=50)",
                  "--games", "4", "--bootstrap", "10"]):
        here = _sparring(*args, "--out", "here", cwd=tmp_path)
        spread = _sparring(*args, "--out", "spread", "--workers", "2", cwd=tmp_path)
        assert here.returncode == 0 and spread.returncode == 0, spread.stderr + spread.stdout
        stores = [RunStore(tmp_path / name, read_only=True) for name in ("here", "spread")]
        matches = [[dataclasses.replace(m, wall_s=0) for m in s.matches()] for s in stores]
        turns = [[[(t.seat, t.action, t.valid) for t in s.turns(m.index)] for m in s.matches()] for s in stores]
        for s in stores:
            s.close()
        assert matches[0] == matches[1] and turns[0] == turns[1] and len(matches[0]) in (6, 12)
        for name in ("here", "spread"):
            (tmp_path / name).rename(tmp_path / f"{name}-{args[0]}")


def test_a_ray_address_that_does_not_answer_is_refused_in_words(tmp_path):
    """Ray alone retries such an address for minutes; the command says at once."""
    run = _sparring("play", "tictactoe", "--players", "random", "random", "--games", "2", "--out", "x",
                    "--ray-address", "127.0.0.1:1", cwd=tmp_path)
    assert run.returncode != 0 and "no Ray cluster answers at 127.0.0.1:1" in run.stdout + run.stderr
    assert "ray start --head" in run.stdout + run.stderr and not (tmp_path / "x" / "run.sqlite").exists()
