"""Ratings from stored two-player matches.

Four views, because each answers a different question:

- **openskill** (Weng & Lin 2011, Plackett-Luce): a running rating updated match by
  match in index order; mu, sigma and the conservative ordinal mu - 3 sigma.
- **Bradley-Terry on the Elo scale**: one strength per agent fitted to all results at
  once, P(i beats j) = 1 / (1 + 10^((elo_j - elo_i) / 400)), with bootstrap 95%
  intervals. Scored on wins (draw = half a win), or on returns: a match scores
  1/2 + (r_i - r_j) / (2 (hi - lo)) for utility range [lo, hi], so a pair's mean score
  is a linear function of the mean-return margin and the fit is Elo's model applied
  to expected return instead of win counts.
- **Nash averaging** (Balduzzi et al. 2018, "Re-evaluating evaluation"): for a
  zero-sum game, each agent's expected return against the maximum-entropy Nash
  mixture of the field's antisymmetric payoff matrix. It is the return-based rating
  that does not reward beating weak agents: adding copies of an agent, or more
  exploitable agents, changes nothing. In Kuhn poker, win counts (and even average
  returns over a field with always_pass in it) put always_bet first; Nash averaging
  puts CFR first.
- **alpha-rank** (Omidshafiei et al. 2019, via OpenSpiel): the stationary mass of
  each agent under evolutionary dynamics on the payoff matrix.

Matches are `MatchRecord`s, as `RunStore.matches()` and `TournamentResult.matches` give them.
A match of an agent against itself says nothing about relative strength and is left
out of openskill and Bradley-Terry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from sparring.arena import results
from sparring.arena.results import agent_names, outcome_score, payoff_matrix
from sparring.errors import SparringError
from sparring.games.core import GameSpec
from sparring.records import MatchRecord, PayoffMatrix

ELO_PER_NAT = 400 / math.log(10)  # Elo points per unit of log-strength: 10^(400/400) = e^(400/ELO_PER_NAT)
Score = Literal["win", "return"]


def _two_seat(match: MatchRecord) -> None:
    if len(match.seats) != 2:
        raise SparringError(
            f"match {match.index} has {len(match.seats)} seats: these ratings pair "
            "agents two at a time, so they need two-player matches"
        )


# ---- openskill ---------------------------------------------------------------------


@dataclass
class SkillRating:
    agent: str
    mu: float
    sigma: float
    ordinal: float  # mu - 3 sigma: openskill's conservative estimate, for ranking
    matches: int


def openskill_ratings(matches: list[MatchRecord], agents: list[str] | None = None, model=None) -> list[SkillRating]:
    """Update every agent's openskill rating once per match, in index order. A match
    ranks the seats by return (equal returns are a draw). `model` is any openskill
    model instance; default `PlackettLuce()` with the library's defaults
    (mu 25, sigma 25/3, beta 25/6, tau 25/300)."""
    try:
        from openskill.models import PlackettLuce
    except ImportError:
        raise SparringError("openskill ratings need the openskill package: pip install openskill") from None
    model = model or PlackettLuce()
    names = agent_names(matches, agents)
    ratings = {name: model.rating(name=name) for name in names}
    played = dict.fromkeys(names, 0)
    for match in sorted(matches, key=lambda m: m.index):
        _two_seat(match)
        a, b = match.seats
        if a == b or a not in ratings or b not in ratings:
            continue
        [[ratings[a]], [ratings[b]]] = model.rate([[ratings[a]], [ratings[b]]], scores=list(match.returns))  # openskill checks for a list
        played[a] += 1
        played[b] += 1
    return [
        SkillRating(name, r.mu, r.sigma, r.ordinal(), played[name]) for name, r in ratings.items()
    ]


# ---- Bradley-Terry on the Elo scale ---------------------------------------------------


@dataclass
class EloRating:
    agent: str
    elo: float  # fit on all matches
    low: float  # bootstrap 2.5th percentile (NaN without bootstrap)
    high: float  # bootstrap 97.5th percentile


def pair_scores(
    matches: list[MatchRecord],
    agents: list[str],
    score: Score = "win",
    utility_range: tuple[float, float] | None = None,
) -> dict[tuple[int, int], np.ndarray]:
    """For each pair i < j that met, agent i's score in each of their matches, in [0, 1].

    "win": 1 for a win, 1/2 for a draw, 0 for a loss. "return": 1/2 + (r_i - r_j) /
    (2 (hi - lo)), clipped to [0, 1] (a hand-made record can fall outside the range).
    """
    if score not in ("win", "return"):
        raise SparringError(f"score '{score}' unknown: use win or return")
    if score == "return":
        if utility_range is None:
            raise SparringError("scoring on returns needs the game's utility range (GameSpec.utility_range)")
        lo, hi = utility_range
        if not hi > lo:
            raise SparringError(f"utility range {utility_range} is empty: scoring on returns needs lo < hi")
    position = {name: k for k, name in enumerate(agents)}
    scores: dict[tuple[int, int], list[float]] = {}
    for match in matches:
        _two_seat(match)
        a, b = match.seats
        if a == b or a not in position or b not in position:
            continue
        first = 0 if position[a] < position[b] else 1  # seat of the lower-index agent
        i, j = position[match.seats[first]], position[match.seats[1 - first]]
        if score == "win":
            s = outcome_score(match.returns, first)
        else:
            margin = match.returns[first] - match.returns[1 - first]
            s = min(1.0, max(0.0, 0.5 + margin / (2 * (hi - lo))))
        scores.setdefault((i, j), []).append(s)
    return {pair: np.asarray(s) for pair, s in scores.items()}


def fit_bradley_terry(
    wins: np.ndarray, prior_draws: float = 1.0, anchor: int | None = None,
    names: list[str] | None = None, tol: float = 1e-10, max_iter: int = 100,
) -> np.ndarray:
    """Elo ratings maximising the Bradley-Terry likelihood of `wins`.

    wins: (..., n, n), wins[..., i, j] = (possibly fractional) wins of i over j; any
    leading axes are independent problems (bootstrap resamples), fitted together.
    prior_draws: virtual draws added to every pair that met, half a win each way.
      It keeps the fit finite when an agent won or lost every game (the maximum
      likelihood estimate is then infinite), at a pull towards equality that fades as
      real games accumulate. BayesElo's default prior is 2 virtual draws.
    anchor: the agent rated 0; None centres the ratings on mean 0.
    names: agent names, for error messages.
    Returns (..., n) Elo ratings.

    Fitted by Newton's method on the log-strengths theta (elo = ELO_PER_NAT theta).
    The log-likelihood sum_ij W_ij log sigmoid(theta_i - theta_j) is concave (Hunter
    2004, Ann. Stat.); its negative Hessian is the graph Laplacian with weights
    N_ij p_ij (1 - p_ij), singular only along theta + constant, which the fit pins by
    keeping mean theta = 0. Each step takes the best of a few step lengths along the
    Newton direction, so the likelihood never decreases. Minorisation-maximisation
    (Hunter's MM) needs thousands of iterations when one agent wins nearly every
    game; this needs about ten.
    """
    # long: the docstring states the model, the prior and the iteration, which the code follows line by line
    wins = np.asarray(wins, dtype=float)
    n = wins.shape[-1]
    if wins.ndim < 2 or wins.shape[-2:] != (n, n):
        raise SparringError(f"wins must be (..., n, n), got shape {wins.shape}")
    if prior_draws < 0 or (wins < 0).any():
        raise SparringError("wins and prior_draws must be >= 0")
    games = wins + np.swapaxes(wins, -1, -2)
    met = games > 0
    wins = wins + prior_draws / 2 * met
    games = games + prior_draws * met
    _check_comparable(wins, names)

    def log_likelihood(theta):  # (..., n) -> (...)
        margin = theta[..., :, None] - theta[..., None, :]
        return -(wins * np.logaddexp(0.0, -margin)).sum((-1, -2))

    # Step lengths tried along the Newton direction; 0 last, so no step loses likelihood.
    steps = np.append(0.5 ** np.arange(12), 0.0)
    theta = np.zeros(wins.shape[:-1])
    for _ in range(max_iter):
        p = 1 / (1 + np.exp(theta[..., None, :] - theta[..., :, None]))  # p[i, j] = P(i beats j)
        gradient = wins.sum(-1) - (games * p).sum(-1)  # (..., n), sums to 0
        weights = games * p * (1 - p)
        laplacian = np.eye(n) * weights.sum(-1)[..., None, :] - weights
        # (L + 11^T/n) d = g has the solution of L d = g with mean d = 0.
        direction = np.linalg.solve(laplacian + 1 / n, gradient[..., None])[..., 0]
        candidates = theta[None] + steps.reshape(-1, *([1] * theta.ndim)) * direction[None]
        best = np.argmax(log_likelihood(candidates), axis=0)  # (...)
        step = steps[best][..., None]
        theta = theta + step * direction
        if np.max(np.abs(step * direction)) < tol:
            break
    elo = ELO_PER_NAT * theta
    if anchor is None:
        return elo - elo.mean(-1, keepdims=True)
    return elo - elo[..., anchor : anchor + 1]


def _check_comparable(wins: np.ndarray, names: list[str] | None) -> None:
    """The fit is finite and unique iff, in the graph with an edge i -> j whenever i
    has some win over j, every agent reaches every other (Hunter 2004, condition A).
    `wins` (..., n, n) already holds the prior's virtual draws."""
    n = wins.shape[-1]
    for edges, problem in (
        (wins + np.swapaxes(wins, -1, -2) > 0,
         "{a} and {b} are not linked by any chain of matches, so their ratings cannot be "
         "compared: play a round robin, or a gauntlet with one common opponent"),
        (wins > 0,
         "{a} has no chain of wins leading to {b} (e.g. it lost every game), so without a "
         "prior the fit is infinite: use prior_draws > 0"),
    ):
        reach = (edges | np.eye(n, dtype=bool)).reshape(-1, n, n).astype(np.int64)
        for _ in range(max(1, math.ceil(math.log2(n)))):  # paths up to length 2^k
            reach = (reach @ reach > 0).astype(np.int64)
        if not reach.all():
            _, i, j = map(int, np.argwhere(reach == 0)[0])
            a, b = (names[i], names[j]) if names else (f"agent {i}", f"agent {j}")
            raise SparringError(problem.format(a=a, b=b))


def bradley_terry(
    matches: list[MatchRecord],
    agents: list[str] | None = None,
    score: Score = "win",
    utility_range: tuple[float, float] | None = None,
    prior_draws: float = 1.0,
    anchor: str | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> list[EloRating]:
    """Bradley-Terry Elo ratings with bootstrap 95% percentile intervals.

    The bootstrap resamples each pairing's matches with replacement (keeping the
    number of games per pairing), refits, and takes the 2.5th and 97.5th percentiles
    of each agent's (anchored) rating. `bootstrap=0` skips it.
    """
    names = agent_names(matches, agents)
    if len(names) < 2:
        raise SparringError(f"ratings need at least 2 agents, got {len(names)}")
    anchor_index = None
    if anchor is not None:
        if anchor not in names:
            raise SparringError(f"anchor '{anchor}' is not one of the agents: {', '.join(names)}")
        anchor_index = names.index(anchor)
    if bootstrap and prior_draws <= 0:
        raise SparringError(
            "bootstrap needs prior_draws > 0: a resample can leave an agent without a win, "
            "where the Bradley-Terry fit has no finite answer"
        )
    scores = pair_scores(matches, names, score, utility_range)
    unplayed = [name for k, name in enumerate(names) if not any(k in pair for pair in scores)]
    if unplayed:
        raise SparringError(f"no matches against other agents for {', '.join(unplayed)}: they cannot be rated")
    n = len(names)
    wins = np.zeros((n, n))
    for (i, j), s in scores.items():
        wins[i, j], wins[j, i] = s.sum(), len(s) - s.sum()
    elo = fit_bradley_terry(wins, prior_draws, anchor_index, names)
    low = high = np.full(n, np.nan)
    if bootstrap:
        rng = np.random.default_rng(seed)
        resampled = np.zeros((bootstrap, n, n))
        for (i, j), s in scores.items():
            picks = rng.integers(0, len(s), size=(bootstrap, len(s)))  # (B, games)
            sums = s[picks].sum(-1)
            resampled[:, i, j], resampled[:, j, i] = sums, len(s) - sums
        samples = fit_bradley_terry(resampled, prior_draws, anchor_index, names)  # (B, n)
        low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return [EloRating(name, float(elo[k]), float(low[k]), float(high[k])) for k, name in enumerate(names)]


# ---- game-theoretic summaries of a zero-sum payoff matrix ------------------------------


def _antisymmetric(payoff: np.ndarray) -> np.ndarray:
    payoff = np.array(payoff, dtype=float)
    n = payoff.shape[0]
    if payoff.shape != (n, n):
        raise SparringError(f"a payoff matrix must be square, got shape {payoff.shape}")
    off = ~np.eye(n, dtype=bool)
    if np.isnan(payoff[off]).any():
        i, j = map(int, np.argwhere(np.isnan(payoff) & off)[0])
        raise SparringError(
            f"the payoff matrix has unplayed pairings (agent {i} against {j}): Nash averaging "
            "and alpha-rank need every pairing, so play a round robin"
        )
    payoff[~off] = 0.0
    # A zero-sum match, forfeits included (`arena.match.forfeit_outcome`), gives
    # r_ij = -r_ji already; the antisymmetric part guards hand-made matrices.
    return (payoff - payoff.T) / 2


def maxent_nash(payoff: np.ndarray, tol: float = 1e-9) -> np.ndarray:
    """The maximum-entropy Nash equilibrium of the symmetric zero-sum game with the
    antisymmetric part A of `payoff`: the mixture p on the simplex with A p <= 0 (no
    agent gains against it) of greatest entropy. It is unique (Balduzzi et al. 2018).

    Two steps, both exact up to solver tolerance (scipy, a dependency of OpenSpiel):
    1. One LP per agent, max p_i over the Nash set, finds the agents that are in the
       support of some equilibrium, S; the average of those solutions is a Nash
       mixture with support exactly S.
    2. Every equilibrium satisfies (A p)_j = 0 for j in S (complementary slackness),
       so the Nash set is that affine set intersected with p >= 0 and (A p)_j <= 0
       off S. Entropy is maximised over it by SLSQP from the step-1 point; the usual
       case, a unique equilibrium, has no freedom left and skips this.
    """
    from scipy.linalg import null_space
    from scipy.optimize import linprog, minimize

    a = _antisymmetric(payoff)
    n = a.shape[0]
    if n == 1:
        return np.ones(1)
    # LP: maximise p_i  s.t.  A p <= 0, sum p = 1, p >= 0.
    solutions = []
    for i in range(n):
        c = np.zeros(n)
        c[i] = -1.0
        lp = linprog(c, A_ub=a, b_ub=np.zeros(n), A_eq=np.ones((1, n)), b_eq=[1.0], bounds=[(0, None)] * n, method="highs")
        if lp.status != 0:
            raise SparringError(f"the Nash linear program failed ({lp.message}); check the payoff matrix for inf or NaN")
        solutions.append(lp.x)
    start = np.clip(np.mean(solutions, axis=0), 0, None)
    support = start > tol
    start = np.where(support, start, 0.0)
    start /= start.sum()
    s = np.flatnonzero(support)
    # Directions that keep A_S p = 0 and sum p = 1, within the support.
    basis = null_space(np.vstack([a[np.ix_(s, s)], np.ones((1, len(s)))]), rcond=1e-10)  # (|S|, k)
    if basis.shape[1] == 0:
        return start
    p0 = start[s]
    off = np.flatnonzero(~support)

    def negative_entropy(z):
        p = np.clip(p0 + basis @ z, 1e-300, None)
        return float(np.sum(p * np.log(p)))

    def gradient(z):
        p = np.clip(p0 + basis @ z, 1e-300, None)
        return basis.T @ (np.log(p) + 1)

    constraints = [{"type": "ineq", "fun": lambda z: p0 + basis @ z, "jac": lambda z: basis}]
    if len(off):
        rows = a[np.ix_(off, s)]
        constraints.append({"type": "ineq", "fun": lambda z: -(rows @ (p0 + basis @ z)), "jac": lambda z: -rows @ basis})
    result = minimize(negative_entropy, np.zeros(basis.shape[1]), jac=gradient, constraints=constraints,
                      method="SLSQP", options={"ftol": 1e-12, "maxiter": 500})
    p = np.clip(p0 + basis @ result.x, 0, None)
    out = np.zeros(n)
    out[s] = p / p.sum()
    return out


@dataclass
class NashAveraging:
    agents: list[str]
    nash: np.ndarray  # (n,) the maxent Nash mixture over the agents
    ratings: np.ndarray  # (n,) expected return against it: 0 on its support, < 0 off it


def nash_averaging(payoff: np.ndarray | PayoffMatrix, agents: list[str] | None = None) -> NashAveraging:
    """Nash averaging (Balduzzi et al. 2018): rating = A p*, each agent's expected
    return against the maxent Nash mixture p* of the antisymmetric payoff matrix A.
    No agent gets more than 0 against an equilibrium, so the agents in its support
    share the top rating and every other agent is rated by how much it loses."""
    if isinstance(payoff, PayoffMatrix):
        agents, payoff = payoff.agents, payoff.mean
    a = _antisymmetric(payoff)
    nash = maxent_nash(a)
    return NashAveraging(list(agents or range(len(a))), nash, a @ nash)


def alpha_rank(payoff: np.ndarray | PayoffMatrix, alpha: float = 100.0, population: int = 50) -> np.ndarray:
    """alpha-rank stationary distribution over the agents (OpenSpiel's
    `egt.alpharank.compute`, single population, local selection model).

    payoff[i, j] is agent i's mean return against j; alpha is the selection
    intensity per unit of return and `population` the population size m.
    """
    from open_spiel.python.egt import alpharank

    if isinstance(payoff, PayoffMatrix):
        payoff = payoff.mean
    table = np.array(payoff, dtype=float)
    _antisymmetric(table)  # refuses unplayed pairings with a clear message
    np.fill_diagonal(table, 0.0)  # the local selection model never reads it
    # Strong selection overflows exp() inside the fixation probabilities; the
    # limits it computes (0 or 1) are the right ones.
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        _, _, pi, _, _ = alpharank.compute([table], m=population, alpha=alpha)
    pi = np.clip(np.asarray(pi, dtype=float), 0.0, None)  # the eigen-solver leaves -1e-17s
    return pi / pi.sum()


# ---- everything at once -----------------------------------------------------------------


@dataclass
class Ratings:
    agents: list[str]
    payoff: PayoffMatrix
    openskill: list[SkillRating]
    elo_wins: list[EloRating]  # Bradley-Terry on win/draw/loss
    elo_returns: list[EloRating]  # Bradley-Terry on the return margin
    nash: NashAveraging | None = None  # zero-sum games with every pairing played
    alpha_rank: np.ndarray | None = None  # same condition; payoffs per unit of utility range
    nash_interval: np.ndarray | None = None  # (n, 2) bootstrap 95% interval of each Nash-averaging rating
    alpha_rank_interval: np.ndarray | None = None  # (n, 2) the same of each alpha-rank mass
    notes: list[str] = field(default_factory=list)  # why a view was left out


def rate(
    matches: list[MatchRecord], spec: GameSpec, agents: list[str] | None = None,
    bootstrap: int = 1000, seed: int = 0,
) -> Ratings:
    """Every rating of a run's matches. Nash averaging and alpha-rank are computed for
    zero-sum games whose payoff matrix has every pairing (a round robin); alpha-rank
    sees payoffs divided by the width of the utility range, so its default alpha
    means the same in every game."""
    names = agent_names(matches, agents)
    payoff = payoff_matrix(matches, names)
    ratings = Ratings(
        agents=names, payoff=payoff,
        openskill=openskill_ratings(matches, names),
        elo_wins=bradley_terry(matches, names, "win", bootstrap=bootstrap, seed=seed),
        elo_returns=bradley_terry(matches, names, "return", spec.utility_range, bootstrap=bootstrap, seed=seed),
    )
    off = ~np.eye(len(names), dtype=bool)
    if not spec.zero_sum:
        ratings.notes.append(f"{spec.name} is not zero-sum: Nash averaging and alpha-rank left out")
    elif (payoff.games[off] == 0).any():
        ratings.notes.append("not every pairing was played: Nash averaging and alpha-rank need a round robin")
    else:
        ratings.nash = nash_averaging(payoff)
        lo, hi = spec.utility_range
        ratings.alpha_rank = alpha_rank(payoff.mean / (hi - lo))
        if bootstrap:
            ratings.nash_interval, ratings.alpha_rank_interval = _zero_sum_intervals(
                matches, names, hi - lo, min(bootstrap, ZERO_SUM_RESAMPLES), seed)
    return ratings


ZERO_SUM_RESAMPLES = 200  # bootstrap resamples of Nash averaging and alpha-rank (a solve each)


def _zero_sum_intervals(matches: list[MatchRecord], names: list[str], width: float, resamples: int,
                        seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap 95% percentile intervals, (n, 2) each, of every agent's Nash-averaging
    rating and alpha-rank mass: each pairing's matches resampled with replacement and
    both views solved again. A point value alone hides that a few games can move
    alpha-rank's mass from one agent to another entirely."""
    rng = np.random.default_rng(seed)
    pairings = results.pairing_returns(matches, names)
    nash, alpha = [], []
    for _ in range(resamples):
        mean = results.resampled_payoff(pairings, len(names), [rng.integers(0, len(r), len(r)) for _, _, r in pairings])
        nash.append(nash_averaging(mean).ratings)
        alpha.append(alpha_rank(mean / width))
    return np.percentile(nash, [2.5, 97.5], axis=0).T, np.percentile(alpha, [2.5, 97.5], axis=0).T


RATING_COLUMNS = ("agent", "Elo on return (95% CI)", "Elo on wins (95% CI)", "openskill mu ± sigma",
                  "Nash averaging (95% CI)", "alpha-rank (95% CI)")


def rating_rows(ratings: Ratings, best_first: bool = False) -> list[list[str]]:
    """One row of text cells per agent, under `RATING_COLUMNS`; `best_first` orders
    them by Elo on return."""
    by_return = {r.agent: r for r in ratings.elo_returns}
    by_wins = {r.agent: r for r in ratings.elo_wins}
    skill = {r.agent: r for r in ratings.openskill}
    order = list(enumerate(ratings.agents))
    if best_first:
        order.sort(key=lambda pair: -by_return[pair[1]].elo)
    rows = []
    for i, name in order:
        ret, win, sk, nash, alpha = by_return[name], by_wins[name], skill[name], ratings.nash, ratings.alpha_rank
        rows.append([
            name,
            f"{ret.elo:+.0f} [{ret.low:+.0f}, {ret.high:+.0f}]",
            f"{win.elo:+.0f} [{win.low:+.0f}, {win.high:+.0f}]",
            f"{sk.mu:.1f} ± {sk.sigma:.1f}",
            "" if nash is None else f"{nash.ratings[i]:+.3f}{_interval(ratings.nash_interval, i, '+.3f')} "
                                    f"(p={nash.nash[i]:.2f})",
            "" if alpha is None else f"{alpha[i]:.3f}{_interval(ratings.alpha_rank_interval, i, '.3f')}",
        ])
    return rows


def _interval(interval: np.ndarray | None, i: int, fmt: str) -> str:
    return "" if interval is None else f" [{interval[i, 0]:{fmt}}, {interval[i, 1]:{fmt}}]"
