"""Scripted agents against facts from outside the code: tic-tac-toe theory (every
opening draws; after a centre opening only corner replies hold the draw), Kuhn's
rules, and the uniform distribution."""

from __future__ import annotations

import random

import pytest

from sparring.agents.base import Agent, Decision
from sparring.agents.scripted import FixedActionAgent, PerfectTicTacToeAgent, RandomAgent
from sparring.errors import SparringError
from sparring.games.registry import make_game


def decision_for(state, seed: int = 0) -> Decision:
    return Decision(state=state, player=state.current_player(), rng=random.Random(seed), seed=seed)


def test_agents_fulfil_the_protocol():
    for agent in (RandomAgent(), FixedActionAgent("bet"), PerfectTicTacToeAgent()):
        assert isinstance(agent, Agent)


def test_random_agent_is_uniform_over_legal_actions_and_reproducible():
    state = make_game("tictactoe").new_initial_state(random.Random(0))
    state.apply(4)  # 8 legal cells left
    agent = RandomAgent()
    n = 8000
    picks = [agent.act([decision_for(state, seed)])[0].action for seed in range(n)]
    assert set(picks) == set(state.legal_actions())
    # Each cell ~ Binomial(n, 1/8): allow 5 standard deviations.
    sd = (n * (1 / 8) * (7 / 8)) ** 0.5
    for a in state.legal_actions():
        assert abs(picks.count(a) - n / 8) < 5 * sd
    assert agent.act([decision_for(state, 7)]) == agent.act([decision_for(state, 7)])


def test_always_bet_against_always_pass_wins_one_chip_every_kuhn_deal(play_match):
    # Kuhn rules: a bet answered by a pass is a fold, the bettor takes the 1-chip ante.
    game = make_game("kuhn_poker")
    bet, check = FixedActionAgent("bet"), FixedActionAgent("PASS")
    assert bet.name == "always_bet"
    for seed in range(30):
        assert play_match(game, [bet, check], seed) == [1.0, -1.0]
        assert play_match(game, [check, bet], seed) == [-1.0, 1.0]  # pass, bet, pass: P1 folds


def test_fixed_action_falls_back_when_its_action_is_illegal():
    state = make_game("leduc_poker").new_initial_state(random.Random(0))
    names = {state.action_name(a): a for a in state.legal_actions()}
    state.apply(names["raise"])
    state.apply(names["raise"])  # two raises: the round's cap (Leduc rules)
    legal_names = {state.action_name(a): a for a in state.legal_actions()}
    assert "raise" not in legal_names
    agent = FixedActionAgent("raise", fallbacks=("call",))
    assert agent.act([decision_for(state)])[0].action == legal_names["call"]
    # no fallback named: a legal action drawn from the decision's generator
    no_fallback = [FixedActionAgent("raise").act([decision_for(state, s)])[0].action for s in range(50)]
    assert set(no_fallback) == set(legal_names.values())


def test_perfect_tictactoe_values_match_theory():
    agent = PerfectTicTacToeAgent()
    state = make_game("tictactoe").new_initial_state(random.Random(0))
    # Tic-tac-toe is a draw, and so is every one of X's nine openings.
    assert agent.action_values(state.os_state) == {a: 0 for a in range(9)}
    state.apply(4)  # X takes the centre: O holds the draw only in a corner
    values = agent.action_values(state.os_state)
    assert {a for a, v in values.items() if v == 0} == {0, 2, 6, 8}
    assert all(values[a] == -1 for a in (1, 3, 5, 7))


def test_perfect_tictactoe_takes_an_immediate_win():
    state = make_game("tictactoe").new_initial_state(random.Random(0))
    for cell in (0, 3, 1, 4):  # X: 0, 1; O: 3, 4
        state.apply(cell)
    assert PerfectTicTacToeAgent().act([decision_for(state)])[0].action == 2
    assert state.os_state.history() == [0, 3, 1, 4]  # the live state is untouched


def test_perfect_tictactoe_never_loses_to_random_and_draws_itself(play_match):
    game = make_game("tictactoe")
    perfect, rand = PerfectTicTacToeAgent(), RandomAgent()
    for seed in range(100):
        assert play_match(game, [perfect, rand], seed)[0] >= 0
        assert play_match(game, [rand, perfect], seed)[1] >= 0
    for seed in range(50):
        assert play_match(game, [perfect, perfect], seed) == [0.0, 0.0]


def test_perfect_tictactoe_refuses_other_games():
    state = make_game("kuhn_poker").new_initial_state(random.Random(0))
    with pytest.raises(SparringError, match="only tic-tac-toe"):
        PerfectTicTacToeAgent().act([decision_for(state)])


def test_fixed_action_needs_a_name():
    with pytest.raises(SparringError):
        FixedActionAgent("  ")
