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

from sparring.agents.mixture import MixtureAgent
from sparring.agents.registry import AgentFactory
from sparring.arena.match import play_matches, rotating_plan
from sparring.errors import SparringError
from sparring.eval.exploitability import agent_policy, exploitability_report
from sparring.eval.report import write_report
from sparring.games.registry import make_game
from sparring.learn.population.metagame import MetaGame, from_table
from sparring.learn.population.run import Population, PopulationConfig, run_population
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


@pytest.mark.parametrize("game, settings, why", [
    ("bargaining", {}, "not a 2-player zero-sum game"),
    ("openspiel:kuhn_poker(players=3)", {}, "not a 2-player zero-sum game"),
    ("liars_dice", {"oracle": "exact"}, "more than 10,000 information states.*Use --oracle rl"),
    ("tictactoe", {"oracle": "exact"}, "perfect information.*Use --oracle rl"),
    ("liars_dice", {"meta_game": "exact"}, "more than 10,000 information states.*--meta-game sampled"),
])
def test_what_cannot_serve_the_game_is_refused_before_any_compute(tmp_path, game, settings, why):
    with pytest.raises(SparringError, match=why):
        run_population(PopulationConfig(game=game, out=str(tmp_path / "p"), **settings))
    assert not (tmp_path / "p").exists()


def test_a_sampled_meta_game_covers_the_exact_one_and_a_broken_run_resumes_to_the_same(tmp_path, monkeypatch):
    """Tabular members (exact oracle) with the meta-game sampled from play: every
    entry within two half-widths of the exact one (a 3.9-sigma band), the
    exploitability still exact; stopped after its second member and resumed, the
    run stores the same members, entries and intervals as an unbroken one."""
    settings = {"oracle": "exact", "meta_game": "sampled", "iterations": 3, "matches_per_entry": 400}
    run_population(PopulationConfig(out=str(tmp_path / "whole"), **settings))
    members, metagame, iterations = stored(tmp_path / "whole")
    exact = MetaGame(make_game("kuhn_poker"))
    for member in members:
        exact.add(from_table(exact.os_game, member.policy))
    store = RunStore(tmp_path / "whole")
    half_widths = store.metagame_half_widths()
    store.close()
    assert len(half_widths) == 12  # every off-diagonal entry, sampled
    for (i, j), value in metagame.items():
        assert abs(value - exact.matrix[i, j]) <= 2 * half_widths.get((i, j), 0.0) + 1e-12
    assert iterations[0].exploitability == pytest.approx(11 / 24)  # still exact: the uniform policy
    assert iterations[-1].exploitability < iterations[0].exploitability
    assert "±" in write_report(tmp_path / "whole")[1].read_text()

    real, calls = Population._respond, []

    def stopped_at_the_second(self, solved):
        calls.append(solved.iteration)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as Ctrl-C or a kill would, between stored members
        return real(self, solved)

    monkeypatch.setattr(Population, "_respond", stopped_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        run_population(PopulationConfig(out=str(tmp_path / "broken"), **settings))
    monkeypatch.setattr(Population, "_respond", real)
    assert len(stored(tmp_path / "broken")[0]) == 2
    run_population(PopulationConfig(resume=str(tmp_path / "broken"), **settings))
    members_b, metagame_b, iterations_b = stored(tmp_path / "broken")
    assert [m.policy for m in members_b] == [m.policy for m in members]
    assert metagame_b == metagame  # the same matches, seeded by entry
    assert [s.meta_strategy for s in iterations_b] == [s.meta_strategy for s in iterations]


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
        # The mixture plays its members as adapters of one loaded base model, and
        # read through them it is the mixture the run measured.
        nash = factory.make(str(run_dir / "nash"))
        assert isinstance(nash, MixtureAgent) and set(nash.labels) <= {"base", "member-1"}
        assert len({id(m.backend.backend) for m in nash.members}) == 1
        mixture = exploitability_report(game, agent_policy(game, nash, mode="exact"))
        played = play_matches(rotating_plan(game, [nash, factory.make("random")], range(8), run_seed=0))
        assert all(r.forfeit_by is None for r in played)
    finally:
        factory.close()
    store = RunStore(run_dir)
    entries = {e.checkpoint: e for e in store.exploitability()}
    store.close()
    assert entries["distilled"].exploitability == pytest.approx(report.exploitability, abs=1e-9)  # as users load it
    assert entries["nash"].exploitability == pytest.approx(iterations[-1].exploitability)
    assert mixture.exploitability == pytest.approx(iterations[-1].exploitability, abs=1e-4)


@pytest.mark.slow
def test_in_a_game_too_large_to_enumerate_the_meta_game_is_played(tmp_path):
    """Liar's dice: the rl oracle trains an adapter against the base model drawn
    per match, the meta-game entry is sampled from play with its interval, and the
    mixture plays as an agent; no exploitability and no distillation, said so."""
    run_dir = tmp_path / "p"
    run_population(PopulationConfig(game="liars_dice", iterations=1, steps=1, games_per_step=4,
                                    matches_per_entry=8, out=str(run_dir)))
    members, metagame, iterations = stored(run_dir)
    assert [m.name for m in members] == ["base", "member-1"] and members[1].policy == {}
    store = RunStore(run_dir)
    half_widths = store.metagame_half_widths()
    store.close()
    assert metagame[0, 1] == -metagame[1, 0] and half_widths[0, 1] > 0
    assert [s.exploitability for s in iterations] == [None, None]
    assert (run_dir / "nash" / "members.json").exists() and not (run_dir / "nash" / "policy.json").exists()
    assert not (run_dir / "distilled").exists()
    game = make_game("liars_dice")
    factory = AgentFactory(game)
    try:
        nash = factory.make(str(run_dir / "nash"))
        played = play_matches(rotating_plan(game, [nash, factory.make("random")], range(4), run_seed=0))
    finally:
        factory.close()
    assert isinstance(nash, MixtureAgent) and len(played) == 4


def test_a_sampled_meta_game_on_ray_workers_stores_what_one_process_stores(tmp_path):
    """--workers 2: the members (tabular, by their policy files) are built on the
    workers and play the same matches, so every entry and interval is the same."""
    ray = pytest.importorskip("ray", reason="Ray is the ray extra: pip install -e '.[ray]'")
    settings = {"oracle": "exact", "meta_game": "sampled", "iterations": 2, "matches_per_entry": 100}
    run_population(PopulationConfig(out=str(tmp_path / "here"), **settings))
    try:
        run_population(PopulationConfig(out=str(tmp_path / "spread"), workers=2, **settings))
    finally:
        ray.shutdown()
    here, spread = stored(tmp_path / "here"), stored(tmp_path / "spread")
    assert here[1] == spread[1] and len(here[1]) == 9  # the meta-game, entry by entry
    assert [m.policy for m in here[0]] == [m.policy for m in spread[0]]
    assert [i.meta_strategy for i in here[2]] == [i.meta_strategy for i in spread[2]]
    widths = [RunStore(tmp_path / name, read_only=True).metagame_half_widths() for name in ("here", "spread")]
    assert widths[0] == widths[1] and len(widths[0]) == 6
