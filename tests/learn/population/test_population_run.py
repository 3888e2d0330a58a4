"""A stored population run: the exact-oracle run converges in Kuhn poker as the
in-memory PSRO does, its mixture plays as an agent whose exact exploitability is the
stored one, a run killed with SIGKILL resumes to the same members, meta-game and
meta-strategy, and bad input is refused before any compute."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from sparring.agents.registry import AgentFactory
from sparring.errors import SparringError
from sparring.eval.exploitability import agent_policy, exploitability_report
from sparring.eval.report import write_report
from sparring.games.registry import make_game
from sparring.learn.population.run import PopulationConfig, run_population
from sparring.store import DB_NAME, RunStore


def stored(run_dir):
    store = RunStore(run_dir)
    try:
        return store.members(), store.metagame(), store.population_iterations()
    finally:
        store.close()


def test_exact_oracle_run_converges_and_its_mixture_plays(tmp_path):
    run_population(PopulationConfig(oracle="exact", iterations=8, out=str(tmp_path / "p")))
    members, metagame, iterations = stored(tmp_path / "p")
    assert len(members) == 9 and [i.iteration for i in iterations] == list(range(9))
    assert iterations[0].exploitability == pytest.approx(11 / 24)  # the uniform policy (DESIGN.md)
    assert iterations[-1].exploitability < 0.05
    n = len(members)
    matrix = np.array([[metagame[i, j] for j in range(n)] for i in range(n)])
    assert np.allclose(matrix, -matrix.T)  # a symmetric zero-sum meta-game
    # The nash folder plays as an agent; its exact exploitability is the stored one.
    game = make_game("kuhn_poker")
    factory = AgentFactory(game)
    report = exploitability_report(game, agent_policy(game, factory.make(str(tmp_path / "p" / "nash")), mode="exact"))
    assert report.exploitability == pytest.approx(iterations[-1].exploitability, abs=1e-9)
    _, md = write_report(tmp_path / "p")
    assert "## Population" in md.read_text() and "| 8 | 9 |" in md.read_text()


def test_a_run_killed_with_sigkill_resumes_to_the_same_population(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_population(PopulationConfig(oracle="exact", iterations=8, out=str(whole)))
    command = [sys.executable, "-c", "from sparring.cli import main; main()", "population",
               "--oracle", "exact", "--iterations", "8", "--out", str(killed)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(killed / DB_NAME) as db:
                if db.execute("SELECT COUNT(*) FROM population_members").fetchone()[0] >= 4:
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert len(stored(killed)[0]) < 9
    subprocess.run([*command[:3], "population", "--resume", str(killed)], check=True, capture_output=True)
    (members_a, metagame_a, iterations_a), (members_b, metagame_b, iterations_b) = stored(whole), stored(killed)
    assert [m.policy for m in members_a] == [m.policy for m in members_b]
    assert metagame_a == pytest.approx(metagame_b)
    assert len(iterations_a) == len(iterations_b)
    for a, b in zip(iterations_a, iterations_b):
        assert a.meta_strategy == pytest.approx(b.meta_strategy, abs=1e-9)


@pytest.mark.parametrize("game, why", [
    ("tictactoe", "imperfect-information"),
    ("bargaining", "OpenSpiel"),
    ("openspiel:kuhn_poker(players=3)", "2-player zero-sum"),
])
def test_games_it_cannot_serve_are_refused_before_any_compute(tmp_path, game, why):
    with pytest.raises(SparringError, match=why):
        run_population(PopulationConfig(game=game, out=str(tmp_path / "p")))
    assert not (tmp_path / "p").exists()


def test_bad_settings_say_what_to_use(tmp_path):
    with pytest.raises(SparringError, match="use one of nash"):
        PopulationConfig(solver="best", out=str(tmp_path))
    with pytest.raises(SparringError, match="use rl"):
        PopulationConfig(oracle="cfr", out=str(tmp_path))
    with pytest.raises(SparringError, match="no run at"):
        run_population(PopulationConfig(oracle="exact", resume=str(tmp_path / "none")))


@pytest.mark.slow
def test_rl_oracle_trains_an_adapter_member_and_distils_the_mixture(tmp_path):
    """One trained member and a short distillation with the embedded model: the
    machinery, not the strength (bench/nash.py measures that)."""
    run_dir = tmp_path / "p"
    run_population(PopulationConfig(iterations=1, steps=1, games_per_step=4, distill_steps=2, out=str(run_dir)))
    members, metagame, iterations = stored(run_dir)
    assert [m.name for m in members] == ["base", "member-1"]
    assert (run_dir / members[1].checkpoint / "policy" / "adapter_config.json").exists()
    assert metagame[0, 1] == pytest.approx(-metagame[1, 0])
    game = make_game("kuhn_poker")
    factory = AgentFactory(game)
    try:
        distilled = factory.make(str(run_dir / "distilled"))
        assert distilled.config.mode == "scored"  # it plays as it was trained
        report = exploitability_report(game, agent_policy(game, distilled, mode="exact"))
    finally:
        factory.close()
    store = RunStore(run_dir)
    entries = {e.checkpoint: e for e in store.exploitability()}
    store.close()
    assert entries["distilled"].exploitability == pytest.approx(report.exploitability, abs=1e-9)  # as users load it
    assert entries["nash"].exploitability == pytest.approx(iterations[-1].exploitability)
