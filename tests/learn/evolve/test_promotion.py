"""Promotion by a sequential probability ratio test: error rates against Wald's
theory, the ratio and bounds by hand, the stopping rule, and real tic-tac-toe
games where the better agent must win promotion and the worse must not."""

import math
import re

import numpy as np
import pytest

from sparring.agents.scripted import PerfectTicTacToeAgent, RandomAgent
from sparring.arena.match import derive_seed
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.learn.evolve.promotion import (
    Sprt,
    pair_outcomes,
    play_promotion,
    sequential_test,
)
from sparring.records import Choice, MatchResult

RUNS = 2000


def promote_rate(p: float, sprt: Sprt, rng: np.random.Generator) -> float:
    """The share of RUNS simulated tests that promote a candidate winning each pair
    with chance p (no ties)."""
    wins = rng.random((RUNS, sprt.max_pairs)) < p
    outcomes = np.where(wins, 1, -1).tolist()
    return sum(sequential_test(run, sprt).promoted for run in outcomes) / RUNS


def test_error_rates_are_walds_alpha_and_beta():
    # Wald (1945): the test errs at p0 with chance about alpha and at p1 about beta,
    # a little less since the ratio overshoots its bound; 3 standard errors of RUNS runs.
    sprt, rng = Sprt(), np.random.default_rng(0)
    at_p1, at_p0 = promote_rate(sprt.p1, sprt, rng), promote_rate(sprt.p0, sprt, rng)
    assert at_p1 >= 1 - sprt.beta - 3 * math.sqrt(sprt.beta * (1 - sprt.beta) / RUNS)
    assert at_p0 <= sprt.alpha + 3 * math.sqrt(sprt.alpha * (1 - sprt.alpha) / RUNS)
    # a weaker candidate is promoted even less often than one merely as good
    assert promote_rate(0.3, sprt, rng) < sprt.alpha


def test_ratio_and_bounds_by_hand():
    # Defaults p0 = 0.5, p1 = 0.65, alpha = 0.05, beta = 0.10:
    #   A = log(0.90 / 0.05) = log 18 = 2.890372;  B = log(0.10 / 0.95) = -2.251292
    #   a win adds log(0.65 / 0.5) = 0.262364, a loss log(0.35 / 0.5) = -0.356675
    #   +1 +1 -1 0 +1: 3 wins, 1 loss -> 3 * 0.262364 - 0.356675 = 0.430418
    decision = sequential_test([1, 1, -1, 0, 1], Sprt())
    assert decision.bounds == pytest.approx((-2.251292, 2.890372), abs=1e-6)
    assert decision.llr == pytest.approx(0.430418, abs=1e-6)
    assert (decision.wins, decision.losses, decision.ties, decision.pairs) == (3, 1, 1, 5)
    # the outcomes ran out inside the bounds: no promotion without evidence
    assert decision.decision == "reject" and "ran out after 5 pairs" in decision.reason
    # win rate among decisive pairs with Wilson's interval (Wilson 1927), z = 1.96:
    # n = 4, p = 3/4: denominator 1 + 1.96^2 / 4 = 1.9604, centre (0.75 + 0.4802) / 1.9604
    # = 0.627525, half 1.96 * sqrt(0.046875 + 0.060025) / 1.9604 = 0.326889
    assert decision.win_rate.value == 0.75
    assert (decision.win_rate.low, decision.win_rate.high) == pytest.approx((0.300636, 0.954414), abs=1e-6)


def exactly(outcome: int, allowed: int):
    """`outcome` `allowed` times, then an error: a test that reads on fails."""
    for _ in range(allowed):
        yield outcome
    raise AssertionError(f"read past the decision: more than {allowed} outcomes")


def test_stops_at_the_first_bound_crossed_and_reads_no_further():
    # 11 wins make 2.886 < A = 2.890, 12 make 3.148; 6 losses -2.140 > B = -2.251, 7 -2.497
    promoted = sequential_test(exactly(1, 12), Sprt())
    assert promoted.decision == "promote" and promoted.pairs == 12
    assert promoted.reason == ("the candidate won 12 of 12 decisive pairs: log-likelihood ratio 3.15 "
                               "crossed the promotion bound 2.89")
    rejected = sequential_test(exactly(-1, 7), Sprt())
    assert rejected.decision == "reject" and rejected.pairs == 7
    assert "crossed the rejection bound -2.25" in rejected.reason
    capped = sequential_test(exactly(0, 5), Sprt(max_pairs=5))
    assert capped.decision == "reject" and capped.pairs == 5


def test_truncation_at_max_pairs_rejects_for_want_of_evidence():
    # 10 wins and 10 losses: 10 * (0.262364 - 0.356675) = -0.943, inside both bounds
    decision = sequential_test([1, -1] * 50, Sprt(max_pairs=20))
    assert decision.decision == "reject" and decision.pairs == 20
    assert decision.llr == pytest.approx(-0.943107, abs=1e-6)
    assert "cap of max_pairs = 20" in decision.reason and "not enough evidence" in decision.reason


def test_ties_count_as_pairs_but_leave_the_ratio_unchanged():
    plain = sequential_test([1, -1, 1], Sprt())
    tied = sequential_test([0, 1, 0, -1, 0, 0, 1], Sprt())
    assert tied.llr == plain.llr
    assert (tied.pairs, tied.ties, plain.pairs, plain.ties) == (7, 4, 3, 0)
    assert "(4 tied)" in tied.reason
    # ties alone reach the cap without moving the ratio
    assert sequential_test([0] * 9, Sprt(max_pairs=9)).llr == 0.0


@pytest.mark.parametrize(("settings", "words"), [
    ({"p0": 0.6, "p1": 0.55}, "0 < p0 < p1 < 1"),
    ({"p1": 1.0}, "0 < p0 < p1 < 1"),
    ({"alpha": 0.0}, "alpha is an error rate"),
    ({"beta": 1.5}, "beta is an error rate"),
    ({"alpha": 0.6, "beta": 0.5}, "alpha + beta must be below 1"),
    ({"max_pairs": 0}, "max_pairs must be a whole number >= 1"),
    ({"max_pairs": 2.5}, "max_pairs must be a whole number >= 1"),
])
def test_bad_settings_say_what_to_change(settings, words):
    with pytest.raises(SparringError, match=re.escape(words)):
        Sprt(**settings)


def test_an_outcome_that_is_not_a_pair_result_is_refused():
    with pytest.raises(SparringError, match=r"none of \+1"):
        sequential_test([1, 2], Sprt())


def match(index: int, seats: tuple[str, str], returns: tuple[float, float], seed: int = 7,
          game_returns: tuple[float, float] | None = None) -> MatchResult:
    return MatchResult(index=index, game="test", seed=seed, seats=seats, returns=returns, turns=(),
                       game_returns=game_returns)


def test_pair_outcomes_by_hand():
    c, p = ("cand", "par"), ("par", "cand")
    results = [
        match(0, c, (1, -1)), match(1, p, (0, 0)),  # a win and a draw: won
        match(2, c, (1, -1)), match(3, p, (1, -1)),  # a win each way: tied
        match(5, p, (1, -1)), match(4, c, (-1, 1)),  # two losses, out of order: lost
        # the parent forfeits match 6: the training returns (0, -1) are shaping, the
        # game's result is a win for the candidate (margin +2), which the loss of
        # match 7 (-2) cancels: tied, where the training returns (+1) would say lost
        match(6, c, (0.0, -1.0), game_returns=(1.0, -1.0)), match(7, p, (1, -1)),
    ]
    assert pair_outcomes(results, "cand") == [1, 0, -1, 0]


def test_pair_outcomes_score_the_margin_in_a_general_sum_game():
    # every return positive: the candidate's summed return (6 or 11) would call both
    # pairs won; its margin over the parent says tied (0) and won (5)
    c, p = ("cand", "par"), ("par", "cand")
    results = [match(0, c, (3, 3)), match(1, p, (3, 3)), match(2, c, (5, 0)), match(3, p, (1, 1))]
    assert pair_outcomes(results, "cand") == [0, 1]


def test_pair_outcomes_refuse_broken_pairs():
    c, p = ("cand", "par"), ("par", "cand")
    with pytest.raises(SparringError, match="pair 1 is incomplete"):
        pair_outcomes([match(0, c, (1, -1)), match(1, p, (1, -1)), match(3, p, (1, -1))], "cand")
    with pytest.raises(SparringError, match="not a pair"):
        pair_outcomes([match(0, c, (1, -1), seed=1), match(1, p, (1, -1), seed=2)], "cand")
    with pytest.raises(SparringError, match="do not swap"):
        pair_outcomes([match(0, c, (1, -1)), match(1, c, (1, -1))], "cand")


def check_pairs(results: list[MatchResult], candidate: str, seed: int) -> None:
    """Matches 2k and 2k+1 share pair k's seed and swap the seats, the candidate first in 2k."""
    assert [r.index for r in results] == list(range(len(results)))
    for first, second in zip(results[::2], results[1::2]):
        k = first.index // 2
        assert first.seed == second.seed == derive_seed("promotion", seed, k)
        assert first.seats[0] == candidate and second.seats == first.seats[::-1]


@pytest.fixture(scope="module")
def tictactoe():
    return make_game("tictactoe")


def test_perfect_play_is_promoted_over_random_and_not_the_reverse(tictactoe):
    sprt = Sprt()
    promoted, results = play_promotion(tictactoe, PerfectTicTacToeAgent(), RandomAgent(), sprt, seed=3)
    assert promoted.decision == "promote" and promoted.pairs <= 24  # about 12 wins suffice
    check_pairs(results, "perfect_tictactoe", seed=3)
    # the decision counted the first `pairs` pairs of what was played, in order
    counted = pair_outcomes(results[: 2 * promoted.pairs], "perfect_tictactoe")
    assert (counted.count(1), counted.count(-1), counted.count(0)) == (promoted.wins, promoted.losses, promoted.ties)
    assert promoted.losses == 0  # perfect play never loses a game, so never a pair
    assert len(results) % 2 == 0 and len(results) // 2 - promoted.pairs < 8  # stopped within the round

    rejected, results = play_promotion(tictactoe, RandomAgent(), PerfectTicTacToeAgent(), sprt, seed=3)
    assert rejected.decision == "reject" and "rejection bound" in rejected.reason and rejected.pairs <= 24
    assert rejected.wins == 0
    check_pairs(results, "random", seed=3)


def test_a_copy_of_the_parent_ties_every_pair_and_is_not_promoted(tictactoe):
    # Both matches of a pair draw the same random numbers (seeded by the match), so
    # two copies of one policy play the same game from both seats: margin exactly 0.
    decision, _ = play_promotion(tictactoe, RandomAgent("copy"), RandomAgent("parent"), Sprt(max_pairs=12), seed=1)
    assert (decision.decision, decision.ties, decision.llr) == ("reject", 12, 0.0)
    assert "max_pairs = 12" in decision.reason


class _FailingRandom(RandomAgent):
    """Random play whose backend gives no answer in the matches `fails` picks out."""

    def __init__(self, fails):
        super().__init__()
        self.fails = fails

    def act(self, decisions):
        return [Choice(action=None, backend_error="server timed out") if self.fails(d) else choice
                for d, choice in zip(decisions, super().act(decisions))]


def test_a_pair_with_a_void_match_is_dropped_and_said_so(tictactoe):
    # pair 0's even match, where the parent sits in seat 1, fails; its odd match is played
    pair0 = derive_seed("promotion", 5, 0)
    parent = _FailingRandom(lambda d: d.match_seed == pair0 and d.player == 1)
    decision, results = play_promotion(tictactoe, PerfectTicTacToeAgent(), parent, Sprt(), seed=5)
    assert [r.index for r in results][:2] == [1, 2]
    assert decision.decision == "promote"
    assert "1 incomplete pair was dropped (1 of " in decision.reason and "server timed out" in decision.reason


def test_a_mostly_void_round_is_a_failed_run(tictactoe):
    parent = _FailingRandom(lambda d: True)
    with pytest.raises(SparringError, match="failed in the backend"):
        play_promotion(tictactoe, PerfectTicTacToeAgent(), parent, Sprt(), seed=5)


def test_candidate_and_parent_need_different_names(tictactoe):
    with pytest.raises(SparringError, match="both named 'random'.*new name"):
        play_promotion(tictactoe, RandomAgent(), RandomAgent(), Sprt(), seed=0)
