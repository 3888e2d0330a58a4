import math

import pytest

from sparring.agents.scripted import RandomAgent
from sparring.arena.match import InvalidMoveRule
from sparring.games.registry import make_game
from sparring.learn.evaluation import paired_change, play_eval, policy_outcomes
from sparring.records import Choice


def test_paired_change_by_hand():
    change = paired_change(before=[0, 1, 0, 1], after=[1, 1, 1, 1])
    # differences 1, 0, 1, 0: mean 0.5, sample sd sqrt(1/3), half-width 1.96 * sd / 2
    assert change["diff"] == 0.5
    assert change["diff_ci"] == pytest.approx(1.96 * math.sqrt(1 / 3) / 2)
    assert (change["before"], change["after"], change["after_ci"]) == (0.5, 1.0, 0.0)


class _NoAnswer:
    """An agent that never names a move: every match it plays, it forfeits."""

    name = "mute"

    def act(self, decisions):
        return [Choice(action=None, reason="no answer") for _ in decisions]

    def close(self):
        pass


def test_evaluation_scores_a_forfeit_as_the_games_loss_not_the_training_penalty():
    # Kuhn's least return is -2 (a raise called and lost); the training penalty is -1.
    game = make_game("kuhn_poker")
    results = play_eval(game, _NoAnswer(), RandomAgent(), games=6, seed=0,
                        rule=InvalidMoveRule(retries=0, penalty=-1.0))
    outcomes = policy_outcomes(results, "mute")
    assert outcomes["return"] == [-2.0] * 6
    assert outcomes["win"] == [0.0] * 6
