"""The real embedded model plays real games (a few, kept short)."""

import math

import pytest

from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan
from sparring.games.registry import make_game

pytestmark = pytest.mark.slow


def _play(game_ref, refs, n, rule=InvalidMoveRule()):
    game = make_game(game_ref)
    factory = AgentFactory(game)
    agents = [factory.make(r) for r in refs]
    try:
        return play_matches(rotating_plan(game, agents, range(n), run_seed=11), rule=rule), agents
    finally:
        factory.close()


def test_free_text_tictactoe_records_every_answer(embedded_dir):
    results, _ = _play("tictactoe", ["smollm2(max_tokens=12)", "random"], 4)
    model_turns = [t for r in results for t in r.turns if t.agent.startswith("smollm2")]
    assert model_turns
    for turn in model_turns:
        choice = turn.choice
        assert choice.prompt and choice.completion is not None
        assert len(choice.token_ids) == len(choice.logprobs) > 0
        assert all(lp <= 0 for lp in choice.logprobs)
        assert turn.valid or turn.reason  # an invalid answer is an event with a reason
    for r in results:
        assert r.forfeit_by is not None or sorted(r.returns) in ([-1, 1], [0, 0])


def test_scored_choice_kuhn_is_always_legal_and_a_distribution(embedded_dir):
    results, _ = _play("kuhn_poker", ["smollm2(mode=scored)", "cfr"], 4)
    for turn in (t for r in results for t in r.turns if t.agent.startswith("smollm2")):
        assert turn.valid
        total = sum(math.exp(lp) for lp in turn.choice.action_logprobs.values())
        assert total == pytest.approx(1.0, abs=1e-6)
    assert all(r.forfeit_by is None for r in results)


def test_self_play_shares_one_model_and_batches_both_seats(embedded_dir):
    results, agents = _play("bargaining", ["smollm2(max_tokens=16)", "smollm2(max_tokens=16)"], 2,
                            InvalidMoveRule(retries=0, then="random"))
    assert agents[0] is agents[1]
    assert all(len(r.returns) == 2 for r in results)
