"""Tournaments: pairings, even seat swaps, counts that add up, a payoff matrix that
matches hand-computed means and intervals, storage and continuation, and refusals
that say what to change."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sparring.agents.base import Choice
from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan
from sparring.arena.ratings import rate
from sparring.arena.results import payoff_matrix
from sparring.arena.tournament import pairings, run_tournament
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.records import MatchRecord
from sparring.store import RunStore


@pytest.fixture(scope="module")
def kuhn():
    return make_game("kuhn_poker")


@pytest.fixture(scope="module")
def field(kuhn):
    factory = AgentFactory(kuhn)
    return [factory.make(ref) for ref in ("random", "always_bet", "always_pass")]


class Mute:
    """Never gives a legal answer."""

    name = "mute"

    def act(self, decisions):
        return [Choice(action=None, reason="no answer") for _ in decisions]

    def close(self):
        pass


def test_pairings_round_robin_and_gauntlet():
    assert pairings(4, "round_robin") == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert pairings(4, "gauntlet") == [(0, 1), (0, 2), (0, 3)]


def test_round_robin_swaps_seats_evenly_and_counts_add_up(kuhn, field):
    games = 6
    progress = []
    result = run_tournament(kuhn, field, games, seed=3, progress=lambda done, total: progress.append((done, total)))
    assert len(result.matches) == 3 * games
    assert [m.index for m in result.matches] == list(range(3 * games))
    assert progress[0] == (0, 3 * games) and progress[-1] == (3 * games, 3 * games)
    for a, b in result.pairings:
        seats = [m.seats for m in result.matches if set(m.seats) == {a, b}]
        assert len(seats) == games
        assert seats.count((a, b)) == seats.count((b, a)) == games // 2
    p = result.payoff()
    off = ~np.eye(3, dtype=bool)
    assert (p.games[off] == games).all() and (p.games[~off] == 0).all()
    assert ((p.wins + p.draws + p.losses) == p.games).all()
    assert (p.wins == p.losses.T).all()  # every match has one winner and one loser
    assert np.allclose(p.mean[off], -p.mean.T[off])  # Kuhn is zero-sum
    assert np.isnan(np.diag(p.mean)).all()
    # Kuhn rules: a bet answered by a pass is a fold, so always_bet takes 1 chip every deal.
    bet, check = p.index("always_bet"), p.index("always_pass")
    assert p.mean[bet, check] == 1.0 and p.ci95[bet, check] == 0.0 and p.wins[bet, check] == games


def test_gauntlet_plays_only_the_challenger(kuhn, field):
    result = run_tournament(kuhn, field, 4, mode="gauntlet")
    assert result.pairings == [("random", "always_bet"), ("random", "always_pass")]
    p = result.payoff()
    assert p.games[0, 1] == p.games[0, 2] == 4 and p.games[1, 2] == 0
    assert math.isnan(p.mean[1, 2])


def test_payoff_matrix_against_hand_computed_values():
    def match(index, seats, returns):
        return MatchRecord(index=index, game="kuhn_poker@1", seed=0, seats=tuple(seats), returns=tuple(returns),
                           forfeit_by=None, invalid=(0, 0), turns=0, wall_s=0.0)

    matches = [
        match(0, ["a", "b"], [1, -1]), match(1, ["b", "a"], [-1, 1]),
        match(2, ["a", "b"], [-1, 1]), match(3, ["b", "a"], [-1, 1]),
        match(4, ["a", "c"], [0, 0]), match(5, ["c", "a"], [0, 0]),
    ]
    p = payoff_matrix(matches)
    assert p.agents == ("a", "b", "c")
    # a's returns against b: 1, 1, -1, 1 -> mean 0.5, sample sd 1, half-width 1.96 * 1 / sqrt(4)
    assert p.mean[0, 1] == 0.5 and p.ci95[0, 1] == pytest.approx(0.98)
    assert p.mean[1, 0] == -0.5
    assert (p.wins[0, 1], p.losses[0, 1], p.draws[0, 2]) == (3, 1, 2)
    assert math.isnan(p.mean[1, 2]) and p.games[1, 2] == 0
    sub = payoff_matrix(matches, ["b", "a"])  # rows in the given order; c's matches left out
    assert sub.mean[1, 0] == 0.5 and sub.games.sum() == 8
    with pytest.raises(SparringError, match="no stored matches for z"):
        payoff_matrix(matches, ["a", "z"])


def test_invalid_moves_and_forfeits_are_counted_per_pairing(kuhn, field):
    rule = InvalidMoveRule(retries=1, then="forfeit", penalty=-1.0)
    result = run_tournament(kuhn, [field[0], Mute()], 4, rule=rule)
    p = result.payoff()
    # Each match ends at the mute agent's first decision: 2 rejected answers, then a forfeit.
    assert p.invalid[1, 0] == 8 and p.forfeits[1, 0] == 4 and p.losses[1, 0] == 4
    # A forfeit is the game's loss (Kuhn poker's minimum, -2) and the opponent's win
    # (+2), whatever the training penalty: the matrix stays antisymmetric.
    assert p.invalid[0, 1] == 0 and p.mean[1, 0] == -2.0 and p.mean[0, 1] == 2.0
    assert p.wins[0, 1] == 4


def test_forfeits_keep_nash_averaging_on_a_zero_sum_game(kuhn, field):
    rule = InvalidMoveRule(retries=0, then="forfeit", penalty=-1.0, opponent_reward=0.0)
    result = run_tournament(kuhn, [field[0], Mute()], 4, rule=rule)
    ratings = rate(result.matches, kuhn.spec, bootstrap=0)
    p = ratings.payoff
    assert p.mean[0, 1] == -p.mean[1, 0] == 2.0
    # The mute agent loses every match: the Nash mixture is all on the other agent,
    # which the mute agent's Nash-averaging rating measures as the full loss, -2.
    assert ratings.nash.nash.tolist() == [1.0, 0.0]
    assert ratings.nash.ratings[1] == pytest.approx(-2.0)


def test_a_stored_tournament_is_a_normal_run_and_continues(kuhn, field, tmp_path):
    store = RunStore(tmp_path / "run", create=True)
    first = run_tournament(kuhn, field, 4, seed=1, store=store)
    stored = store.matches()
    assert len(stored) == 12 and stored == first.matches
    in_memory = run_tournament(kuhn, field, 4, seed=1).matches  # same seed, no store: same matches
    assert [(m.seats, m.returns) for m in in_memory] == [(m.seats, m.returns) for m in stored]
    progress = []
    again = run_tournament(kuhn, field, 4, seed=1, store=store, progress=lambda d, t: progress.append((d, t)))
    assert progress == [(12, 12)]  # nothing left to play
    assert again.matches == stored
    with pytest.raises(SparringError, match="different plan .*games_per_pair"):
        run_tournament(kuhn, field, 6, seed=1, store=store)
    store.close()
    played = RunStore(tmp_path / "played", create=True)  # a plain `play` run
    played.write_match(_one_match(kuhn, field))
    with pytest.raises(SparringError, match="not from a tournament"):
        run_tournament(kuhn, field, 4, store=played)
    played.close()


def _one_match(game, agents):
    return play_matches(rotating_plan(game, agents[:2], [0], run_seed=0))[0]


def test_refusals_say_what_to_change(kuhn, field):
    with pytest.raises(SparringError, match="at least 2 agents"):
        run_tournament(kuhn, field[:1], 4)
    with pytest.raises(SparringError, match="positive"):
        run_tournament(kuhn, field, 0)
    with pytest.raises(SparringError, match="even so that each agent plays each seat equally often.*use 4"):
        run_tournament(kuhn, field, 3)
    with pytest.raises(SparringError, match="distinct.*random"):
        run_tournament(kuhn, [field[0], field[0]], 4)
    with pytest.raises(SparringError, match="mode 'swiss' unknown"):
        run_tournament(kuhn, field, 4, mode="swiss")
    three = make_game("openspiel:kuhn_poker(players=3)")
    with pytest.raises(SparringError, match="two at a time.*3 seats"):
        run_tournament(three, field, 4)
