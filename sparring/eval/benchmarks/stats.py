"""Scores with intervals for the benchmarks: normalized relative advantage with a
bootstrap interval, proportions with Wilson intervals, means with normal ones."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sparring.arena.results import mean_ci95


@dataclass(frozen=True)
class Estimate:
    """A score and its 95% interval [low, high] over `n` samples."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value_text()} {self.interval_text()} (n={self.n})"

    def value_text(self) -> str:
        """The score, or n/a where there is none (the agent never played validly)."""
        return "n/a" if math.isnan(self.value) else f"{self.value:.3f}"

    def interval_text(self) -> str:
        """The interval, or why there is none: with fewer than 2 samples there is no
        spread to estimate, and a zero-width interval (every sample alike) would claim
        a certainty a few matches cannot give."""
        if math.isnan(self.value):
            return "n/a"
        if self.n < 2:
            return "none (n<2)"
        if math.isnan(self.low) or math.isnan(self.high):
            return "n/a"
        if self.low == self.high:
            return f"none (all {self.n} alike)"
        return f"[{self.low:.3f}, {self.high:.3f}]"


def no_valid_play(n: int) -> Estimate:
    """The score of an agent that forfeited all its `n` matches: none at all."""
    return Estimate(math.nan, math.nan, math.nan, n)


def no_valid_play_note(forfeits: int) -> str:
    return f"no valid play: the agent forfeited all {forfeits} matches, so there is no score"


def nra(pairs: Sequence[tuple[float, float]]) -> float:
    """Normalized relative advantage (GTBench, Duan et al. 2024, arXiv:2402.12348):
    NRA = sum(s1 - s2) / sum(|s1| + |s2|) over matches, where s1 is the agent's
    return and s2 its opponent's. It lies in [-1, 1]: 1 when the opponent never
    scores while the agent does, -1 the reverse. When every return is 0 (only
    draws in a win/draw/loss game) the ratio is 0/0; we define it as 0, no
    advantage either way."""
    total = sum(abs(a) + abs(b) for a, b in pairs)
    if total == 0:
        return 0.0
    return sum(a - b for a, b in pairs) / total


def bootstrap_ci(
    samples: Sequence,
    statistic: Callable[[Sequence], float],
    rng: random.Random,
    resamples: int = 1000,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval (Efron & Tibshirani 1993, ch. 13) of
    `statistic` over `samples`, resampling whole samples (matches) with
    replacement. Degenerate (one point) for fewer than 2 samples."""
    if not samples:
        return math.nan, math.nan
    if len(samples) < 2:
        value = statistic(samples)
        return value, value
    values = [
        statistic([samples[rng.randrange(len(samples))] for _ in samples]) for _ in range(resamples)
    ]
    return _percentiles(values, level)


def stratified_bootstrap_ci(
    groups: Sequence[Sequence],
    statistic: Callable[[list[list]], float],
    rng: random.Random,
    resamples: int = 1000,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap of a statistic of several groups (e.g. the mean NRA over
    games), resampling within each group so every resample keeps every group."""
    values = [
        statistic([[g[rng.randrange(len(g))] for _ in g] for g in groups]) for _ in range(resamples)
    ]
    return _percentiles(values, level)


def _percentiles(values: list[float], level: float) -> tuple[float, float]:
    values = sorted(values)
    tail = (1 - level) / 2
    low = values[int(math.floor(tail * (len(values) - 1)))]
    high = values[int(math.ceil((1 - tail) * (len(values) - 1)))]
    return low, high


def nra_estimate(pairs: Sequence[tuple[float, float]], rng: random.Random, resamples: int = 1000) -> Estimate:
    low, high = bootstrap_ci(pairs, nra, rng, resamples)
    return Estimate(nra(pairs), low, high, len(pairs))


def wilson_estimate(successes: int, n: int, z: float = 1.96) -> Estimate:
    """Accuracy with the Wilson score interval (Wilson 1927), which, unlike the
    normal approximation, stays inside [0, 1] and is not zero-width at 0% or 100%."""
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n)


def mean_estimate(values: Sequence[float]) -> Estimate:
    """Mean with the normal-approximation interval of `sparring.arena.results`."""
    mean, half = mean_ci95(list(values))
    return Estimate(mean, mean - half, mean + half, len(values))
