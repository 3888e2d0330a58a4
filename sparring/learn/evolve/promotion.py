"""Whether a candidate agent version (a revised strategy playbook, a new adapter)
replaces its parent: promoted only on evidence, from paired head-to-head games.

The games come in pairs: the same seed (deal, chance) twice with the seats
swapped, so first-move advantage and a lucky deal cancel within the pair, as
engine testing plays each opening with both colours. A pair is won, lost or tied
by the candidate's summed margin over the parent.

The decision is Wald's sequential probability ratio test (Wald 1945, "Sequential
tests of statistical hypotheses", Ann. Math. Statist. 16(2):117-186) on the
Bernoulli outcomes of the decisive pairs: H0 p = p0 (the candidate is no better)
against H1 p = p1 (better by enough to matter), p the chance that the candidate
wins a decisive pair (a tie says nothing of p, so it is counted but left out of
the ratio). It stops as soon as the evidence is clear, which takes on
average far fewer games than a fixed-size test with the same error rates (Wald &
Wolfowitz 1948 prove no test does better at p0 and p1). Wald's bounds
A = log((1 - beta) / alpha) and B = log(beta / (1 - alpha)) keep the error
rates at about alpha (promoting a candidate that is no better) and beta
(rejecting one that is better): at most alpha / (1 - beta) and beta / (1 - alpha),
and in practice a little under alpha and beta, since the ratio overshoots a bound
(Wald 1947, "Sequential Analysis", ch. 3). Chess engines are promoted the same
way: Stockfish's Fishtest runs an SPRT on paired games for every patch.

The test is truncated at `max_pairs`: with no bound crossed there, the candidate is
rejected for want of evidence, never promoted, so the cap can only lower the
chance of a false promotion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

from sparring.agents.base import Agent
from sparring.arena.match import (
    InvalidMoveRule,
    PlannedMatch,
    derive_seed,
    play_matches,
    void_note,
)
from sparring.errors import SparringError
from sparring.eval.benchmarks.stats import Estimate, wilson_estimate
from sparring.games.core import Game
from sparring.records import MatchResult

# A pair's margin this close to 0 is a tie: sums of fractional returns carry
# rounding error, which must not turn a tie into a win.
TIE_TOLERANCE = 1e-9
_END = object()  # the end of the outcomes (a sentinel no outcome can equal)


@dataclass(frozen=True)
class Sprt:
    """Wald's sequential probability ratio test on the candidate's pair wins."""

    p0: float = 0.5
    """The pair win rate of a candidate no better than its parent (H0): 0.5 is even."""
    p1: float = 0.65
    """The pair win rate worth promoting (H1); the nearer to p0, the more pairs it takes."""
    alpha: float = 0.05
    """The chance of promoting a candidate whose rate is p0 (a false promotion)."""
    beta: float = 0.10
    """The chance of rejecting a candidate whose rate is p1 (a missed improvement)."""
    max_pairs: int = 200
    """The most pairs played (ties included); with no bound crossed by then, reject."""

    def __post_init__(self):
        if not 0 < self.p0 < self.p1 < 1:
            raise SparringError(f"the SPRT needs 0 < p0 < p1 < 1, got p0={self.p0}, p1={self.p1}: p0 is the pair win "
                                "rate of a candidate no better than its parent (0.5), p1 the higher rate worth "
                                "promoting (e.g. 0.65)")
        for label, value, usual in (("alpha", self.alpha, 0.05), ("beta", self.beta, 0.10)):
            if not 0 < value < 1:
                raise SparringError(f"{label} is an error rate and must lie strictly between 0 and 1, got {value}: "
                                    f"{usual} is usual")
        if self.alpha + self.beta >= 1:
            raise SparringError(f"alpha + beta must be below 1, got {self.alpha} + {self.beta}: otherwise the "
                                "promotion bound is not above the rejection bound and the test decides nothing")
        if isinstance(self.max_pairs, bool) or not isinstance(self.max_pairs, int) or self.max_pairs < 1:
            raise SparringError(f"max_pairs must be a whole number >= 1, got {self.max_pairs!r}: it caps the pairs "
                                "played before the candidate is rejected for want of evidence")

    @property
    def upper(self) -> float:
        """A: the log-likelihood ratio at or above which the candidate is promoted."""
        return math.log((1 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        """B: the log-likelihood ratio at or below which the candidate is rejected."""
        return math.log(self.beta / (1 - self.alpha))

    def llr(self, wins: int, losses: int) -> float:
        """log P(outcomes | p1) / P(outcomes | p0) of `wins` and `losses` among decisive
        pairs. Computed from the counts, not summed step by step, so it carries no
        accumulated rounding."""
        return wins * math.log(self.p1 / self.p0) + losses * math.log((1 - self.p1) / (1 - self.p0))


@dataclass(frozen=True)
class PromotionDecision:
    """The outcome of a promotion test and the evidence behind it."""

    decision: Literal["promote", "reject"]
    reason: str  # one sentence a person can read
    wins: int  # pairs the candidate won
    losses: int  # pairs it lost
    ties: int  # pairs tied: counted towards max_pairs, left out of the ratio
    pairs: int  # pairs read by the test: wins + losses + ties
    llr: float  # the log-likelihood ratio when the test stopped
    bounds: tuple[float, float]  # (B, A): reject at or below B, promote at or above A
    win_rate: Estimate  # wins / decisive pairs with its 95% Wilson interval

    @property
    def promoted(self) -> bool:
        return self.decision == "promote"


def sequential_test(outcomes: Iterable[int], sprt: Sprt) -> PromotionDecision:
    """Read pair outcomes (+1 the candidate won the pair, -1 lost, 0 tie) until the
    log-likelihood ratio crosses a bound or `sprt.max_pairs` are read, and decide.
    Never reads an outcome past the decision, so `outcomes` may be a generator that
    plays games on demand. Outcomes that run out first reject, as the cap does."""
    counts = {1: 0, -1: 0, 0: 0}
    stream = iter(outcomes)
    while sum(counts.values()) < sprt.max_pairs:
        outcome = next(stream, _END)
        if outcome is _END:
            return _decided(sprt, counts, "reject", f"the outcomes ran out after {sum(counts.values())} pairs "
                            "with no bound crossed: not enough evidence to promote")
        if outcome not in counts:
            raise SparringError(f"pair outcome {outcome!r} is none of +1 (the candidate won the pair), "
                                "-1 (it lost) or 0 (a tie)")
        counts[outcome] += 1
        llr = sprt.llr(counts[1], counts[-1])
        if llr >= sprt.upper:
            return _decided(sprt, counts, "promote", f"crossed the promotion bound {sprt.upper:.2f}")
        if llr <= sprt.lower:
            return _decided(sprt, counts, "reject", f"crossed the rejection bound {sprt.lower:.2f}, evidence that "
                            f"it wins no more than p0 = {sprt.p0:g} of them")
    return _decided(sprt, counts, "reject", f"reached the cap of max_pairs = {sprt.max_pairs} pairs without "
                    "crossing either bound: not enough evidence to promote")


def _decided(sprt: Sprt, counts: dict[int, int], decision: Literal["promote", "reject"],
             why: str) -> PromotionDecision:
    wins, losses, ties = counts[1], counts[-1], counts[0]
    llr = sprt.llr(wins, losses)
    tied = f" ({ties} tied)" if ties else ""
    reason = (f"the candidate won {wins} of {wins + losses} decisive pairs{tied}: "
              f"log-likelihood ratio {llr:.2f} {why}")
    return PromotionDecision(
        decision=decision, reason=reason, wins=wins, losses=losses, ties=ties, pairs=wins + losses + ties,
        llr=llr, bounds=(sprt.lower, sprt.upper), win_rate=wilson_estimate(wins, wins + losses),
    )


def pair_outcomes(results: list[MatchResult], candidate: str) -> list[int]:
    """One outcome per pair, in pair order: matches 2k and 2k+1 are pair k (the same
    seed, seats swapped). The outcome is the sign of the candidate's margin over its
    opponent (scored returns: a forfeit is the game's loss) summed over both matches.
    In a zero-sum game this is the sign of the candidate's summed return; the margin
    also holds in a general-sum game, where every return may be positive."""
    pairs: dict[int, list[MatchResult]] = {}
    for result in results:
        pairs.setdefault(result.index // 2, []).append(result)
    outcomes = []
    for k in sorted(pairs):
        first, second = _checked_pair(k, pairs[k], candidate)
        margin = _margin(first, candidate) + _margin(second, candidate)
        outcomes.append(0 if abs(margin) <= TIE_TOLERANCE else int(math.copysign(1, margin)))
    return outcomes


def _checked_pair(k: int, matches: list[MatchResult], candidate: str) -> tuple[MatchResult, MatchResult]:
    indices = sorted(m.index for m in matches)
    if indices != [2 * k, 2 * k + 1]:
        raise SparringError(f"pair {k} is incomplete: it needs matches {2 * k} and {2 * k + 1}, got {indices}; "
                            "drop pairs with a void or missing match before scoring them")
    first, second = sorted(matches, key=lambda m: m.index)
    if first.seed != second.seed or candidate not in first.seats or candidate not in second.seats:
        raise SparringError(f"matches {2 * k} and {2 * k + 1} are not a pair: a pair plays one seed twice with "
                            f"{candidate} in both, got seeds {first.seed}, {second.seed} and seats "
                            f"{first.seats}, {second.seats}")
    if len(first.seats) != 2 or first.seats != second.seats[::-1]:
        raise SparringError(f"matches {2 * k} and {2 * k + 1} do not swap two seats ({first.seats}, "
                            f"{second.seats}): a pair plays the candidate against one opponent in both seats")
    return first, second


def _margin(result: MatchResult, candidate: str) -> float:
    seat = result.seat_of(candidate)
    returns = result.scored_returns
    return returns[seat] - returns[1 - seat]


def play_promotion(
    game: Game,
    candidate: Agent,
    parent: Agent,
    sprt: Sprt,
    seed: int,
    rule: InvalidMoveRule = InvalidMoveRule(),  # noqa: B008 (frozen: a shared default cannot change)
    pairs_per_round: int = 8,
    concurrency: int = 64,
    first_index: int = 0,
    on_match_end: Callable[[MatchResult], None] | None = None,
) -> tuple[PromotionDecision, list[MatchResult]]:
    """Play the candidate against its parent in rounds of `pairs_per_round` pairs
    (one `play_matches` per round, so a model sees batches) until the sequential test
    decides. Returns the decision and every match played, in index order: the last
    round's pairs past the decision are played and returned but not counted.

    A match voided by a backend failure leaves its pair incomplete: the pair is
    dropped and the decision's reason says how many were; a round mostly void
    raises SparringError (`void_note`), since it would measure the server.

    `first_index` (even) is the first match's index, so the games can follow a run's
    stored matches; `on_match_end` gets each as it ends (the store writes it)."""
    _check_promotion(game, candidate, parent, pairs_per_round)
    if first_index % 2:
        raise SparringError(f"first_index must be even (pair k is matches first_index + 2k and + 2k + 1), got {first_index}")
    rounds = _Rounds(game, candidate, parent, sprt, seed, rule, pairs_per_round, concurrency, first_index, on_match_end)
    decision = sequential_test(rounds.outcomes(), sprt)
    note = void_note(rounds.voided, rounds.planned)
    if note is not None:
        dropped = f"{rounds.dropped} incomplete pair{'s were' if rounds.dropped != 1 else ' was'} dropped"
        decision = replace(decision, reason=f"{decision.reason}; {dropped} ({note})")
    return decision, sorted(rounds.results, key=lambda r: r.index)


def _check_promotion(game: Game, candidate: Agent, parent: Agent, pairs_per_round: int) -> None:
    if candidate.name == parent.name:
        raise SparringError(f"the candidate and its parent are both named '{candidate.name}': the results tell "
                            "agents apart by name, so give the candidate a new name (e.g. a version suffix)")
    if game.spec.players != 2:
        raise SparringError(f"promotion plays the candidate against its parent head to head, but "
                            f"{game.spec.name} has {game.spec.players} players: choose a 2-player game")
    if pairs_per_round < 1:
        raise SparringError(f"pairs_per_round must be >= 1, got {pairs_per_round}")


@dataclass
class _Rounds:
    """The promotion games, played a round at a time as the test asks for outcomes,
    and what they left: every result, the voided matches (index -> reason), the
    matches planned and the pairs dropped for a void match."""

    game: Game
    candidate: Agent
    parent: Agent
    sprt: Sprt
    seed: int
    rule: InvalidMoveRule
    pairs_per_round: int
    concurrency: int
    first_index: int = 0
    on_match_end: Callable[[MatchResult], None] | None = None
    results: list[MatchResult] = field(default_factory=list)
    voided: dict[int, str] = field(default_factory=dict)
    planned: int = 0
    dropped: int = 0

    def outcomes(self) -> Iterator[int]:
        """Pair outcomes in pair order; no round plans more pairs than the test can
        still read."""
        read = 0
        while True:
            plan = self.plan(range(self.planned // 2, self.planned // 2 + min(self.pairs_per_round,
                                                                               self.sprt.max_pairs - read)))
            round_voided: dict[int, str] = {}
            results = play_matches(plan, self.rule, self.concurrency, on_match_end=self.on_match_end,
                                   on_match_void=round_voided.__setitem__)
            void_note(round_voided, len(plan))  # raises when most of the round is void
            self.results += results
            self.voided |= round_voided
            self.planned += len(plan)
            complete = [r for r in results if r.index ^ 1 not in round_voided]  # index ^ 1: its pair's other match
            if not complete:
                # Each pair lost one match: another round would likely loop on a failing server.
                raise SparringError(f"every pair of the round from match {plan[0].index} lost a match to the "
                                    f"backend ({round_voided[min(round_voided)]}): check the server and its "
                                    "limits, then run the same command again")
            outcomes = pair_outcomes(complete, self.candidate.name)
            self.dropped += len(plan) // 2 - len(outcomes)
            for outcome in outcomes:
                read += 1
                yield outcome

    def plan(self, pairs: range) -> list[PlannedMatch]:
        """Pair k is matches 2k (the candidate in seat 0) and 2k+1 (seats swapped),
        both with the pair's seed."""
        plan = []
        for k in pairs:
            pair_seed = derive_seed("promotion", self.seed, k)
            first = self.first_index + 2 * k
            plan += [PlannedMatch(first, self.game, (self.candidate, self.parent), pair_seed),
                     PlannedMatch(first + 1, self.game, (self.parent, self.candidate), pair_seed)]
        return plan
