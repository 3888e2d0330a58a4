"""Held-out benchmarks: the 144 strict ordinal 2x2 games (name the pure Nash
equilibria; repeated play against fixed strategies) and a GTBench-style suite
scored by normalized relative advantage. Each runner returns a `BenchmarkReport`
whose `table()` prints per-family / per-game scores with 95% intervals."""

from sparring.eval.benchmarks.gtbench import GTBENCH_GAMES, run_gtbench
from sparring.eval.benchmarks.matrix2x2 import STRATEGIES, run_matrix_benchmark
from sparring.eval.benchmarks.report import BenchmarkReport
from sparring.eval.benchmarks.stats import Estimate, bootstrap_ci, nra

__all__ = [
    "BenchmarkReport", "Estimate", "GTBENCH_GAMES", "STRATEGIES", "bootstrap_ci", "nra",
    "run_gtbench", "run_matrix_benchmark",
]
