"""Ratings against numbers from outside the code: Weng & Lin's update formulas,
hand-solved Bradley-Terry fits, bootstrap coverage of known strengths, closed-form
equilibria of cyclic games, the alpha-rank fixation formula, and the Kuhn poker
facts that separate win counts from game-theoretic strength."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from sparring.agents.registry import AgentFactory
from sparring.arena.ratings import (
    alpha_rank,
    bradley_terry,
    fit_bradley_terry,
    maxent_nash,
    nash_averaging,
    openskill_ratings,
    rate,
)
from sparring.arena.results import pairing_returns, payoff_matrix, resampled_payoff
from sparring.arena.tournament import run_tournament
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.records import MatchRecord


def match(index, seats, returns):
    return MatchRecord(index=index, game="kuhn_poker@1", seed=0, seats=tuple(seats), returns=tuple(returns),
                       forfeit_by=None, invalid=(0, 0), turns=0, wall_s=0.0)


def games(a, b, wins, losses, draws=0, start=0):
    """`a` against `b`: wins, losses and draws for a, seats alternating."""
    results = [(1, -1)] * wins + [(-1, 1)] * losses + [(0, 0)] * draws
    out = []
    for k, (ra, rb) in enumerate(results):
        seats, returns = ((a, b), (ra, rb)) if k % 2 == 0 else ((b, a), (rb, ra))
        out.append(match(start + k, seats, returns))
    return out


# ---- openskill ----------------------------------------------------------------------


def weng_lin_two_player(rank_a: int, rank_b: int):
    """Weng & Lin (2011), Algorithm 4 (Plackett-Luce), for two fresh players with
    openskill's defaults mu = 25, sigma = 25/3, beta = 25/6, and tau = 25/300 added to
    sigma before the update. Returns ((mu_a, sigma_a), (mu_b, sigma_b))."""
    mu, sigma, beta, tau = 25.0, 25 / 3, 25 / 6, 25 / 300
    var = sigma**2 + tau**2
    c = math.sqrt(2 * (var + beta**2))  # c^2 = sum over teams of (sigma^2 + beta^2)
    gamma = math.sqrt(var) / c
    out = []
    for me, other in ((rank_a, rank_b), (rank_b, rank_a)):
        omega = delta = 0.0
        ranks = {"me": me, "other": other}
        for q, rank_q in ranks.items():
            if rank_q > me:
                continue  # only teams ranked at or above me
            a_q = sum(r == rank_q for r in ranks.values())
            # p_{me,q} = exp(mu/c) / sum of exp(mu_s/c) over teams s ranked at or below q;
            # equal mus make every exp(mu/c) the same.
            p = 1 / sum(r >= rank_q for r in ranks.values())
            omega += var / c * ((q == "me") - p) / a_q
            delta += gamma * var / c**2 * p * (1 - p) / a_q
        out.append((mu + omega, math.sqrt(var * max(1 - delta, 1e-4))))
    return out


def test_openskill_update_after_one_win_matches_weng_lin_formulas():
    (mu_a, sigma_a), (mu_b, sigma_b) = weng_lin_two_player(1, 2)
    assert mu_a == pytest.approx(27.635389493140497)  # the numbers written out, for the record
    a, b = openskill_ratings([match(0, ["a", "b"], [1, -1])])
    assert (a.agent, a.mu, a.sigma) == ("a", pytest.approx(mu_a, abs=1e-9), pytest.approx(sigma_a, abs=1e-9))
    assert (b.mu, b.sigma) == (pytest.approx(mu_b, abs=1e-9), pytest.approx(sigma_b, abs=1e-9))
    assert a.ordinal == pytest.approx(mu_a - 3 * sigma_a) and a.matches == b.matches == 1
    # A loss from the second seat is the same result.
    b2, a2 = openskill_ratings([match(0, ["b", "a"], [-2, 2])], ["b", "a"])
    assert (a2.mu, b2.mu) == (pytest.approx(mu_a), pytest.approx(mu_b))


def test_openskill_draw_keeps_means_and_updates_in_match_order():
    (mu_a, sigma_a), (mu_b, _) = weng_lin_two_player(1, 1)
    a, b = openskill_ratings([match(0, ["a", "b"], [0, 0])])
    assert mu_a == mu_b == 25.0 and a.mu == pytest.approx(25.0) and a.sigma == pytest.approx(sigma_a)
    history = [match(0, ["a", "b"], [1, -1]), match(1, ["a", "b"], [1, -1]), match(2, ["a", "b"], [-1, 1])]
    forward = openskill_ratings(history)
    assert openskill_ratings(history[::-1], ["a", "b"]) == forward  # sorted by index first
    reordered = [dataclasses.replace(m, index=k) for k, m in enumerate(history[::-1])]  # loss first
    assert openskill_ratings(reordered, ["a", "b"])[0].mu != pytest.approx(forward[0].mu)


# ---- Bradley-Terry --------------------------------------------------------------------


def test_bradley_terry_two_players_hand_worked():
    # A beats B 3 times in 4: P(A beats B) = 3/4 = 1 / (1 + 10^(-d/400)) => d = 400 log10(3).
    d = 400 * math.log10(3)
    a, b = bradley_terry(games("A", "B", 3, 1), prior_draws=0, bootstrap=0)
    assert (a.elo, b.elo) == (pytest.approx(d / 2), pytest.approx(-d / 2))
    assert math.isnan(a.low) and math.isnan(a.high)
    # Draws are half wins: 2 wins and 2 draws score 3 of 4 as well.
    a, _ = bradley_terry(games("A", "B", 2, 0, draws=2), prior_draws=0, bootstrap=0)
    assert a.elo == pytest.approx(d / 2)
    # One virtual draw: A scores 3.5 of 5.
    a, b = bradley_terry(games("A", "B", 3, 1), prior_draws=1, anchor="B", bootstrap=0)
    assert (a.elo, b.elo) == (pytest.approx(400 * math.log10(3.5 / 1.5)), 0.0)


def test_bradley_terry_three_players_consistent_strengths():
    # Strengths 9 : 3 : 1 predict A-B 3/4, B-C 3/4, A-C 9/10; results exactly in those
    # proportions are fitted exactly: 400 log10(9) and 400 log10(3) above C.
    matches = games("A", "B", 30, 10) + games("B", "C", 30, 10, start=40) + games("A", "C", 36, 4, start=80)
    ratings = {r.agent: r.elo for r in bradley_terry(matches, prior_draws=0, anchor="C", bootstrap=0)}
    assert ratings == {"A": pytest.approx(400 * math.log10(9)), "B": pytest.approx(400 * math.log10(3)), "C": 0.0}


def test_bradley_terry_on_returns_scores_the_margin():
    # Utility range [-2, 2]: winning 2 chips scores 1/2 + 4/8 = 1, losing 1 scores 1/2 - 2/8 = 1/4,
    # so A scores 1.25 of 2: d = 400 log10(0.625 / 0.375).
    matches = [match(0, ["A", "B"], [2, -2]), match(1, ["B", "A"], [1, -1])]
    a, b = bradley_terry(matches, score="return", utility_range=(-2, 2), prior_draws=0, bootstrap=0)
    assert a.elo - b.elo == pytest.approx(400 * math.log10(5 / 3))
    # The same two matches on wins are one each: equal ratings.
    a, b = bradley_terry(matches, prior_draws=0, bootstrap=0)
    assert a.elo == pytest.approx(0) and b.elo == pytest.approx(0)


def test_bootstrap_intervals_cover_known_strengths():
    """4 agents with known Elo, 200 games per pair, 10 independent simulations: the
    95% intervals should cover the truth about 95% of the time; require 85% of the 40
    intervals (4 binomial sd below nominal), and widths near the expected ~+-25 Elo."""
    true = np.array([-150.0, -50.0, 50.0, 150.0])  # mean 0, like the centred fit
    names = ["a", "b", "c", "d"]
    rng = np.random.default_rng(2024)
    covered, widths = 0, []
    for trial in range(10):
        matches = []
        for i in range(4):
            for j in range(i + 1, 4):
                p_win = 1 / (1 + 10 ** ((true[j] - true[i]) / 400))
                wins = int((rng.random(200) < p_win).sum())
                matches += games(names[i], names[j], wins, 200 - wins, start=len(matches))
        ratings = bradley_terry(matches, bootstrap=400, seed=trial)
        for r, t in zip(ratings, true):
            covered += r.low <= t <= r.high
            widths.append(r.high - r.low)
    assert covered >= 34, f"{covered} of 40 intervals cover the true Elo"
    assert 25 < np.mean(widths) < 100


def test_bradley_terry_refusals():
    with pytest.raises(SparringError, match="without a prior the fit is infinite"):
        bradley_terry(games("A", "B", 4, 0), prior_draws=0, bootstrap=0)
    with pytest.raises(SparringError, match="bootstrap needs prior_draws > 0"):
        bradley_terry(games("A", "B", 3, 1), prior_draws=0)
    with pytest.raises(SparringError, match="not linked by any chain of matches"):
        bradley_terry(games("A", "B", 3, 1) + games("C", "D", 3, 1, start=4), bootstrap=0)
    with pytest.raises(SparringError, match="anchor 'Z'"):
        bradley_terry(games("A", "B", 3, 1), anchor="Z")
    with pytest.raises(SparringError, match="utility range"):
        bradley_terry(games("A", "B", 3, 1), score="return")
    # Prior draws keep an unbeaten agent finite.
    a, b = fit_bradley_terry(np.array([[0, 4], [0, 0]]), prior_draws=1)
    assert a - b == pytest.approx(400 * math.log10(4.5 / 0.5))


# ---- Nash averaging and alpha-rank ---------------------------------------------------------

RPS = np.array([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], dtype=float)  # rock, paper, scissors


def test_nash_averaging_rates_a_cycle_equally():
    result = nash_averaging(RPS, ["rock", "paper", "scissors"])
    assert result.nash == pytest.approx([1 / 3] * 3)
    assert result.ratings == pytest.approx([0, 0, 0], abs=1e-12)


def test_nash_of_a_weighted_cycle_is_the_closed_form():
    # Paper beats rock by a, rock beats scissors by b, scissors beat paper by c:
    # the equilibrium is proportional to (c, b, a), since A p = 0 then.
    a, b, c = 1.0, 2.0, 1.0
    payoff = np.array([[0, -a, b], [a, 0, -c], [-b, c, 0]])
    assert maxent_nash(payoff) == pytest.approx(np.array([c, b, a]) / (a + b + c))


def test_a_dominated_agent_is_rated_lower_and_copies_change_nothing():
    # A fourth agent that loses 0.5 to each of rock, paper and scissors.
    payoff = np.zeros((4, 4))
    payoff[:3, :3] = RPS
    payoff[3, :3], payoff[:3, 3] = -0.5, 0.5
    result = nash_averaging(payoff)
    assert result.nash == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0], abs=1e-9)
    assert result.ratings == pytest.approx([0, 0, 0, -0.5], abs=1e-9)
    # A copy of rock: the equilibria form a segment; the maxent one splits rock's
    # mass between the copies and every rating stays 0 (Balduzzi et al. 2018, §3).
    copy = np.zeros((4, 4))
    copy[:3, :3] = RPS
    copy[3, :3], copy[:3, 3] = RPS[0], RPS[:, 0]
    result = nash_averaging(copy)
    assert result.nash == pytest.approx([1 / 6, 1 / 3, 1 / 3, 1 / 6], abs=1e-6)
    assert result.ratings == pytest.approx([0, 0, 0, 0], abs=1e-9)


def test_game_theoretic_summaries_need_every_pairing():
    payoff = RPS.copy()
    payoff[0, 1] = payoff[1, 0] = np.nan
    with pytest.raises(SparringError, match="unplayed pairings.*round robin"):
        nash_averaging(payoff)
    with pytest.raises(SparringError, match="unplayed pairings"):
        alpha_rank(payoff)


def test_alpha_rank_two_agents_matches_the_fixation_formula():
    """Omidshafiei et al. (2019): a mutant r in a population of s fixes with
    rho = (1 - e^-u) / (1 - e^-mu), u = alpha (M[r,s] - M[s,r]); with two agents the
    stationary mass of 0 is rho(1->0) / (rho(0->1) + rho(1->0))."""
    d, alpha, m = 0.1, 1.0, 10
    u = alpha * (-d - d)  # agent 1 invading agent 0
    rho_0_to_1 = (1 - math.exp(-u)) / (1 - math.exp(-m * u))
    rho_1_to_0 = (1 - math.exp(u)) / (1 - math.exp(m * u))
    expected = rho_1_to_0 / (rho_0_to_1 + rho_1_to_0)  # 0.8581...
    pi = alpha_rank(np.array([[0, d], [-d, 0]]), alpha=alpha, population=m)
    assert pi == pytest.approx([expected, 1 - expected])
    assert alpha_rank(RPS) == pytest.approx([1 / 3] * 3)


# ---- Kuhn poker: win counts against game-theoretic strength ------------------------------------


@pytest.fixture(scope="module")
def kuhn_ratings():
    """CFR (approximate Nash), always_bet, always_pass and random in a round robin.
    Exact seat-averaged expectations (OpenSpiel policy evaluation): CFR gains 0.111 per
    game against always_bet, which wins 61% of its hands against CFR; 1,600 games per
    pair make CFR's edge about 3 standard errors."""
    game = make_game("kuhn_poker")
    factory = AgentFactory(game)
    agents = [factory.make(ref) for ref in ("cfr", "always_bet", "always_pass", "random")]
    result = run_tournament(game, agents, 1600, seed=0)
    return rate(result.matches, game.spec, bootstrap=200, seed=0)


def test_kuhn_win_counts_put_always_bet_first(kuhn_ratings):
    r = kuhn_ratings
    assert max(r.elo_wins, key=lambda e: e.elo).agent == "always_bet"
    assert max(r.openskill, key=lambda s: s.ordinal).agent == "always_bet"
    cfr, bet = r.payoff.index("cfr"), r.payoff.index("always_bet")
    assert r.payoff.wins[bet, cfr] > r.payoff.losses[bet, cfr]  # always_bet wins more hands than CFR ...
    assert r.payoff.mean[cfr, bet] > 0  # ... and loses chips doing it


def test_kuhn_return_based_ratings_put_cfr_first(kuhn_ratings):
    r = kuhn_ratings
    # Nash averaging: CFR's row is positive against everyone, so the equilibrium of
    # the field is CFR alone and each agent is rated by what it loses to CFR.
    ranking = sorted(zip(r.nash.ratings, r.agents), reverse=True)
    assert ranking[0][1] == "cfr" and ranking[0][0] == pytest.approx(0, abs=1e-9)
    assert ranking[1][0] < 0
    assert r.nash.nash[r.agents.index("cfr")] == pytest.approx(1.0)
    assert r.agents[int(np.argmax(r.alpha_rank))] == "cfr"
    # Bradley-Terry on the return margin averages over this field, where always_bet
    # takes 1 chip every deal from always_pass; it rewards exploiting weak agents,
    # which is why the game-theoretic view above is the one to rank by.
    elo = {e.agent: e for e in r.elo_returns}
    assert elo["cfr"].elo > elo["random"].elo > elo["always_pass"].elo
    assert not r.notes


def test_rate_leaves_out_the_game_theoretic_views_for_a_gauntlet():
    game = make_game("kuhn_poker")
    factory = AgentFactory(game)
    agents = [factory.make(ref) for ref in ("random", "always_bet", "always_pass")]
    result = run_tournament(game, agents, 4, mode="gauntlet")
    ratings = rate(result.matches, game.spec, bootstrap=50)
    assert ratings.nash is None and ratings.alpha_rank is None
    assert "round robin" in ratings.notes[0]
    assert [e.agent for e in ratings.elo_wins] == ["random", "always_bet", "always_pass"]


def test_nash_averaging_and_alpha_rank_carry_bootstrap_intervals():
    """Two evenly matched agents after 30 games each way: alpha-rank's point value puts
    the mass on whichever was luckier, and its interval says that a resample can move
    it all; a dominated third agent's mass stays near 0 with a narrow interval."""
    from sparring.games.registry import make_game

    spec = make_game("kuhn_poker").spec
    history = games("a", "b", wins=17, losses=13) + games("a", "c", wins=30, losses=0, start=30) \
        + games("b", "c", wins=30, losses=0, start=60)
    ratings = rate(history, spec, bootstrap=200, seed=0)
    a, c = ratings.agents.index("a"), ratings.agents.index("c")
    assert ratings.alpha_rank[a] > 0.9  # the point value: all on a
    low, high = ratings.alpha_rank_interval[a]
    assert low < 0.1 and high > 0.9  # but b could as well be the one
    assert ratings.alpha_rank_interval[c, 1] < 0.05
    assert ratings.nash_interval[c, 1] < 0  # c loses against the equilibrium in every resample
    for view, interval in ((ratings.nash.ratings, ratings.nash_interval), (ratings.alpha_rank, ratings.alpha_rank_interval)):
        assert (interval[:, 0] <= view + 1e-9).all() and (view <= interval[:, 1] + 1e-9).all()
    assert rate(history, spec, bootstrap=0).alpha_rank_interval is None


def test_a_bootstrap_sample_s_payoff_is_the_payoff_matrix_of_those_matches():
    """The bootstrap resamples each pairing's returns without rebuilding the payoff
    matrix: its means must be `payoff_matrix`'s for the same drawn matches, an agent
    playing itself (both seats pooled) and an agent left out of the names included."""
    history = games("a", "b", 5, 3, draws=2) + games("a", "c", 4, 4, start=10) + games("b", "c", 1, 6, start=18) \
        + [match(30 + k, ("a", "a"), (1, -1) if k % 2 else (-1, 1)) for k in range(3)] + games("a", "z", 3, 0, start=40)
    names = ["c", "a", "b"]
    pairings = pairing_returns(history, names)
    rng = np.random.default_rng(7)
    for _ in range(5):
        picks = [rng.integers(0, len(r), len(r)) for _, _, r in pairings]
        drawn = []
        for (i, j, _), pick in zip(pairings, picks):
            group = [m for m in history if sorted(names.index(x) for x in m.seats if x in names) == [i, j]
                     and all(x in names for x in m.seats)]
            drawn += [group[k] for k in pick]
        expected = payoff_matrix(drawn, names).mean
        np.testing.assert_allclose(resampled_payoff(pairings, 3, picks), expected, atol=1e-12)
