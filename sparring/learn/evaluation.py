"""Evaluation of a learning policy against a fixed opponent: win/draw/loss, mean
return and invalid-answer rate, each with a 95% interval (normal approximation,
`mean_ci95`). The same seeds every time, so two evaluations of different policy
versions play the same deals and seats."""

from __future__ import annotations

from sparring.agents.base import Agent
from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan
from sparring.arena.results import mean_ci95, outcome
from sparring.games.core import Game
from sparring.records import MatchResult

EVAL_SEED_OFFSET = 1_000_003  # eval games never share seeds with training games


def eval_label(game: str, opponent: str, n_games: int) -> str:
    """The `opponent` of an evaluation row: the opponent in a one-game run (as runs
    always logged it), "GAME vs OPPONENT" when the run plays several games."""
    return opponent if n_games == 1 else f"{game} vs {opponent}"


def play_eval(game: Game, policy: Agent, opponent: Agent, games: int, seed: int,
              rule: InvalidMoveRule, concurrency: int = 64, play=None) -> list[MatchResult]:
    """`games` matches, seats alternating (policy first in even-indexed ones);
    `play`: Ray workers' `Workers.play`, or None for this process."""
    plan = rotating_plan(game, [policy, opponent], range(games), seed + EVAL_SEED_OFFSET)
    if play is not None:
        return play(plan, rule, concurrency)
    return play_matches(plan, rule, concurrency=concurrency, record_views=False)


def policy_outcomes(results: list[MatchResult], policy_name: str) -> dict[str, list[float]]:
    """Per match, from the policy's seat: the game's return (a forfeit as the game's
    loss, not the training penalty), win, draw, win-or-draw; and per policy answer
    whether it was invalid."""
    out: dict[str, list[float]] = {"return": [], "win": [], "draw": [], "win_or_draw": [], "invalid": []}
    for result in results:
        seat = result.seat_of(policy_name)
        scored = result.scored_returns
        result_kind = outcome(scored, seat)
        out["return"].append(scored[seat])
        out["win"].append(float(result_kind == "win"))
        out["draw"].append(float(result_kind == "draw"))
        out["win_or_draw"].append(float(result_kind != "loss"))
        out["invalid"].extend(float(not t.valid) for t in result.turns if t.seat == seat and not t.forced)
    return out


def summarize_eval(results: list[MatchResult], policy_name: str) -> dict[str, float]:
    """Means and 95% half-widths: {'return': m, 'return_ci': h, 'win': ..., ...}."""
    summary: dict[str, float] = {"games": float(len(results))}
    for key, values in policy_outcomes(results, policy_name).items():
        mean, half = mean_ci95(values)
        summary[key], summary[f"{key}_ci"] = mean, half
    return summary


def paired_change(before: list[float], after: list[float]) -> dict[str, float]:
    """Before, after and their per-game difference, each with a 95% half-width. The
    same games (seeds, deals, seats) are played before and after, so the interval of
    the mean difference is the paired one: tighter than comparing two means."""
    diff = [a - b for a, b in zip(after, before)]
    (mb, hb), (ma, ha), (md, hd) = mean_ci95(before), mean_ci95(after), mean_ci95(diff)
    return {"before": mb, "before_ci": hb, "after": ma, "after_ci": ha, "diff": md, "diff_ci": hd}
