"""Solver agents against theory and OpenSpiel's own algorithms: Kuhn's game value
-1/18 (Kuhn 1950), exploitability by OpenSpiel's best response, Leduc's value
about -0.0856, and MCTS against the random baseline at tic-tac-toe."""

from __future__ import annotations

import json
import math
import random
import statistics

import pyspiel
import pytest
from open_spiel.python.algorithms import exploitability, expected_game_score

from sparring.agents import solvers
from sparring.agents.base import Agent, Decision
from sparring.agents.scripted import RandomAgent
from sparring.agents.solvers import CFRAgent, MCTSAgent, count_tree_nodes, solve_cfr
from sparring.errors import SparringError
from sparring.games.registry import make_game

KUHN_VALUE = -1 / 18  # first player's equilibrium value (Kuhn 1950)


@pytest.fixture(scope="module")
def kuhn():
    return make_game("kuhn_poker")


@pytest.fixture(scope="module")
def kuhn_cfr(kuhn):
    return CFRAgent(kuhn)  # default: 10,000 CFR+ iterations, ~0.4 s


def test_solver_agents_fulfil_the_protocol(kuhn_cfr):
    assert isinstance(kuhn_cfr, Agent)
    assert isinstance(MCTSAgent(make_game("tictactoe")), Agent)


def test_kuhn_tree_size_matches_a_hand_count(kuhn):
    # chance deals P0's card (1 node), then P1's (3 nodes); each of the 6 deals has 9
    # betting histories: -, p, b, pp, pb, bp, bb, pbp, pbb
    assert count_tree_nodes(kuhn.os_game, cap=10_000) == 1 + 3 + 6 * 9
    assert count_tree_nodes(kuhn.os_game, cap=10) == 11  # stops just past the cap


def test_cfr_kuhn_policy_is_nash_by_openspiel_best_response(kuhn, kuhn_cfr):
    solved = kuhn_cfr.policy()
    assert (solved.algorithm, solved.iterations) == ("cfr+", 10_000)
    python_policy = solved.to_python(kuhn.os_game)
    assert exploitability.exploitability(kuhn.os_game, python_policy) < 1e-3
    assert pyspiel.exploitability(kuhn.os_game, solved.to_pyspiel()) < 1e-3
    assert solved.exploitability < 1e-3


def test_cfr_kuhn_self_play_value_is_minus_one_eighteenth(kuhn, kuhn_cfr):
    python_policy = kuhn_cfr.policy().to_python(kuhn.os_game)
    values = expected_game_score.policy_value(kuhn.os_game.new_initial_state(), [python_policy] * 2)
    assert values[0] == pytest.approx(KUHN_VALUE, abs=1e-3)
    assert values[1] == pytest.approx(-KUHN_VALUE, abs=1e-3)


def test_cfr_kuhn_sampled_self_play_through_act(kuhn, kuhn_cfr, play_match):
    n = 20_000  # ~1.3 s
    first = [play_match(kuhn, [kuhn_cfr, kuhn_cfr], seed)[0] for seed in range(n)]
    stderr = statistics.stdev(first) / math.sqrt(n)  # ~0.009 for Kuhn's ~1.3 sd
    assert abs(statistics.fmean(first) - KUHN_VALUE) < 4 * stderr


def test_cfr_act_samples_the_policy_with_decision_rng(kuhn, kuhn_cfr):
    state = kuhn.new_initial_state(random.Random(3))
    info = state.os_state.information_state_string(0)
    probs = kuhn_cfr.policy().table[info]
    choices = [kuhn_cfr.act([Decision(state, 0, random.Random(s), s)])[0] for s in range(4000)]
    (logprobs,) = {tuple(sorted(c.action_logprobs.items())) for c in choices}
    assert dict(logprobs)[1] == pytest.approx(math.log(probs[1]) if probs[1] > 0 else -math.inf)
    bet_share = sum(c.action == 1 for c in choices) / len(choices)
    sd = math.sqrt(probs[1] * (1 - probs[1]) / len(choices))
    assert abs(bet_share - probs[1]) <= 5 * sd + 1e-9
    again = [kuhn_cfr.act([Decision(state, 0, random.Random(s), s)])[0].action for s in range(50)]
    assert again == [c.action for c in choices[:50]]


def test_cfr_solve_is_cached_on_disk(kuhn, tmp_path):
    first = solve_cfr(kuhn, iterations=200, cache=tmp_path)
    files = list(tmp_path.glob("kuhn_poker_cfr+_200_*.json"))
    assert len(files) == 1
    second = solve_cfr(kuhn, iterations=200, cache=tmp_path)
    assert second.table == first.table
    assert second.solve_seconds == first.solve_seconds  # read back, not re-solved
    files[0].write_text("{not json")  # a corrupt file is solved again and rewritten
    assert solve_cfr(kuhn, iterations=200, cache=tmp_path).table == first.table
    assert json.loads(files[0].read_text())["iterations"] == 200


def test_cfr_cache_honours_sparring_cache_dir(kuhn, tmp_path, monkeypatch):
    monkeypatch.setenv("SPARRING_CACHE_DIR", str(tmp_path))
    solve_cfr(kuhn, iterations=100)
    assert list((tmp_path / "solvers").glob("kuhn_poker_cfr+_100_*.json"))


def test_vanilla_cfr_also_converges_on_kuhn(kuhn):
    solved = solve_cfr(kuhn, algorithm="cfr", iterations=2000, cache=False)
    assert solved.exploitability < 1e-2


@pytest.mark.parametrize(
    "game_ref, why",
    [
        ("tictactoe", "perfect information: use mcts"),
        ("openspiel:kuhn_poker(players=3)", "3 players"),
        ("openspiel:leduc_poker(players=3)", "3 players"),
    ],
)
def test_cfr_refuses_games_it_cannot_solve(game_ref, why):
    with pytest.raises(SparringError, match=why) as info:
        CFRAgent(make_game(game_ref))
    assert "Kuhn, Leduc" in str(info.value)  # says which games fit


def test_cfr_refuses_general_sum_games():
    with pytest.raises(SparringError, match="not zero-sum"):
        CFRAgent(pyspiel.load_game("sheriff"))  # 2-player general-sum bluffing game


def test_cfr_refuses_trees_too_big(monkeypatch):
    monkeypatch.setattr(solvers, "MAX_CFR_TREE_NODES", 1000)
    with pytest.raises(SparringError, match="more than 1,000 histories"):
        CFRAgent(make_game("leduc_poker"), cache=False)


def test_cfr_refuses_unknown_algorithm(kuhn):
    with pytest.raises(SparringError, match="cfr\\+, cfr"):
        CFRAgent(kuhn, algorithm="dcfr")


def test_cfr_refuses_a_state_of_another_game(kuhn_cfr):
    state = make_game("leduc_poker").new_initial_state(random.Random(0))
    with pytest.raises(SparringError, match="built for kuhn_poker"):
        kuhn_cfr.act([Decision(state, 0, random.Random(0), 0)])


@pytest.mark.slow
def test_cfr_leduc_default_is_near_nash_and_values_match_literature(play_match):
    leduc = make_game("leduc_poker")
    solved = CFRAgent(leduc).policy()  # ~10 s the first time on 2 cores
    assert solved.exploitability < 0.01
    python_policy = solved.to_python(leduc.os_game)
    value = expected_game_score.policy_value(leduc.os_game.new_initial_state(), [python_policy] * 2)[0]
    assert value == pytest.approx(-0.0856, abs=5e-3)


def test_mcts_beats_random_at_tictactoe(play_match):
    game = make_game("tictactoe")
    mcts, rand = MCTSAgent(game, simulations=500), RandomAgent()
    results = [play_match(game, [mcts, rand], s)[0] for s in range(20)]
    results += [play_match(game, [rand, mcts], s)[1] for s in range(20)]
    # Random against random wins 58% as first and 29% as second player (exhaustive
    # count over uniform play); MCTS should win far more and essentially never lose.
    assert sum(r > 0 for r in results) >= 32
    assert sum(r < 0 for r in results) <= 1


def test_mcts_is_reproducible_from_the_decision_rng():
    game = make_game("connect_four")
    state = game.new_initial_state(random.Random(0))
    mcts = MCTSAgent(game, simulations=200)
    picks = [mcts.act([Decision(state, 0, random.Random(s), s)])[0].action for s in range(5)]
    assert picks == [mcts.act([Decision(state, 0, random.Random(s), s)])[0].action for s in range(5)]
    assert state.os_state.history() == []


def test_mcts_refuses_imperfect_information(kuhn):
    with pytest.raises(SparringError, match="perfect information.*use cfr"):
        MCTSAgent(kuhn)


def test_solvers_refuse_non_openspiel_games():
    with pytest.raises(SparringError, match="need an OpenSpiel game"):
        MCTSAgent(object())
