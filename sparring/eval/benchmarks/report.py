"""The result of one benchmark run: an overall score and breakdowns, each with a
95% interval, ready to print as a table or store as JSON."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

from sparring.agents.base import Agent
from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule, PlannedMatch, play_matches, void_note
from sparring.eval.benchmarks.stats import Estimate
from sparring.games.core import Game
from sparring.records import MatchResult


@dataclass
class BenchmarkReport:
    benchmark: str  # e.g. "matrix2x2/nash"
    agent: str
    metric: str  # what the numbers are, e.g. "exact-match accuracy"
    overall: Estimate
    breakdowns: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # e.g. {"family": {...}}
    invalid: int = 0  # rejected answers (retried or not)
    forfeits: int = 0  # matches lost by running out of retries
    items: list[dict[str, Any]] = field(default_factory=list)  # one row per question / match
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str, Estimate]]:
        """(breakdown, key, estimate) rows, the overall score first."""
        out = [("overall", "all", self.overall)]
        for name, table in self.breakdowns.items():
            out.extend((name, key, est) for key, est in table.items())
        return out

    def table(self) -> str:
        rows = self.rows()
        w_by = max(len("by"), *(len(r[0]) for r in rows))
        w_key = max(len("key"), *(len(r[1]) for r in rows))
        w_ci = max(18, *(len(r[2].interval_text()) for r in rows))
        lines = [
            f"{self.benchmark}  agent={self.agent}  metric={self.metric}",
            f"{'by':<{w_by}}  {'key':<{w_key}}  {'score':>7}  {'95% CI':<{w_ci}}  {'n':>5}",
        ]
        for name, key, est in rows:
            lines.append(f"{name:<{w_by}}  {key:<{w_key}}  {est.value_text():>7}  {est.interval_text():<{w_ci}}  {est.n:>5}")
        lines.append(f"invalid answers: {self.invalid}, forfeits: {self.forfeits}")
        lines.extend(self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchmarkReport":
        """The inverse of `to_dict`, for a report stored in a run."""
        return cls(**{
            **data,
            "overall": Estimate(**data["overall"]),
            "breakdowns": {name: {key: Estimate(**e) for key, e in table.items()}
                           for name, table in (data.get("breakdowns") or {}).items()},
        })


@contextmanager
def resolve_agent(agent: Agent | str, game: Game) -> Iterator[Agent]:
    """An agent object as is, or a reference (`random`, `smollm2(mode=scored)`)
    built for `game` by the agent registry; what was built here (a loaded model)
    is released on exit, what was passed in is left to its owner."""
    if not isinstance(agent, str):
        yield agent
        return
    factory = AgentFactory(game)
    try:
        yield factory.make(agent)
    finally:
        factory.close()


def play_scored(plan: list[PlannedMatch], rule: InvalidMoveRule, concurrency: int) -> tuple[dict[int, MatchResult], list[str]]:
    """Play a benchmark's matches: those that finished, by plan index, and a note on
    those a backend failure voided, which no score counts (`void_note`)."""
    voided: dict[int, str] = {}
    results = play_matches(plan, rule, concurrency, on_match_void=voided.__setitem__)
    note = void_note(voided, len(plan))
    return {r.index: r for r in results}, [note] if note else []
