"""Matrix-game benchmark over the 144 strict ordinal 2x2 games (`topology`).

Task A, "nash" (one shot): the agent reads a payoff table in words and names its
pure Nash equilibria as a set of cells ("Answer: top-left, bottom-right" or
"Answer: none"); the score is exact-match accuracy of the set, overall and per
family, with Wilson intervals.

Why a one-decision `State` and not a raw backend call: each question is a game
whose 16 legal actions are the 16 subsets of the cells, so every agent answers
through the normal interface (free text with retries on unreadable answers,
scored choice over the 16 answers, the random baseline at 1/16), batched by the
arena across all questions (one game per match index). Free-text answers are read tolerantly
for scoring (`parse_cells`: any order, "and" or commas, "upper left"), since the
arena's generic extraction reads only one action name.

Each question shows its game under a relabelling of the actions drawn from the
seed, so answer positions carry no hint (in the catalogue orientation the
win-win cell is always top-left).

Task B, "repeated": the agent plays 10 rounds of each game (the registered
`matrix` game with the game's ranks 1..4 as points) against six fixed strategies,
in both seats. The score of a match is the agent's points divided by the most
points any play could earn against that strategy (`max_points`), averaged per
family and per strategy with normal 95% intervals.
"""

from __future__ import annotations

import random
import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Callable, Literal

from sparring.agents.base import Agent, Choice, Decision
from sparring.arena.match import InvalidMoveRule, PlannedMatch, match_seed
from sparring.errors import SparringError
from sparring.eval.benchmarks.report import BenchmarkReport, play_scored, resolve_agent
from sparring.eval.benchmarks.stats import mean_estimate, no_valid_play, no_valid_play_note, wilson_estimate
from sparring.eval.benchmarks.topology import (
    CELL_NAMES,
    FAMILIES,
    OrdinalGame,
    all_games,
    map_cell,
)
from sparring.games.core import GameSpec
from sparring.games.registry import make_game
from sparring.records import MatchResult

ROUNDS = 10
ACTIONS = ("red", "blue")  # neutral action names for the repeated game: A, B


# -- game selection ---------------------------------------------------------------------


def select_games(games: int | Sequence[int] | None, seed: int) -> list[OrdinalGame]:
    """All 144 games (None), a seeded sample of `games` of them (an int), or the
    games with the given numbers (a list). Samples depend only on the seed."""
    catalogue = all_games()
    if games is None:
        return list(catalogue)
    if isinstance(games, int):
        if not 1 <= games <= len(catalogue):
            raise SparringError(f"games must be between 1 and {len(catalogue)}, got {games}")
        picked = random.Random(f"matrix2x2:{seed}").sample(range(len(catalogue)), games)
        return [catalogue[i] for i in sorted(picked)]
    numbers = list(games)
    bad = [n for n in numbers if not 1 <= n <= len(catalogue)]
    if bad:
        raise SparringError(f"game numbers run from 1 to {len(catalogue)}; got {bad}")
    return [catalogue[n - 1] for n in numbers]


# -- Task A: name the pure Nash equilibria --------------------------------------------


def cells_name(cells: frozenset[int]) -> str:
    """The answer text of a set of cells: 'none' or e.g. 'top-left, bottom-right'."""
    return ", ".join(CELL_NAMES[c] for c in sorted(cells)) if cells else "none"


def _cells_of(action: int) -> frozenset[int]:
    """Action ids 0..15 are bit masks over the cells 0..3."""
    return frozenset(c for c in range(4) if action >> c & 1)


_ANSWER = re.compile(r"answer\s*:", re.IGNORECASE)
_CELL = re.compile(r"\b(top|upper|bottom|lower)[\s_-]*(left|right)\b", re.IGNORECASE)
_NONE = re.compile(r"\b(none|no\s+(pure\s+)?(nash\s+)?equilibri(um|a)|empty)\b", re.IGNORECASE)


def parse_cells(text: str | None) -> frozenset[int] | None:
    """The set of cells an answer names, or None if it names neither cells nor
    'none'. Reads the text after the last 'Answer:' if there is one, else all of
    it; case, order, separators and 'upper'/'lower' for 'top'/'bottom' do not
    matter. Cells win over a stray 'none' in the same answer."""
    if not text:
        return None
    marks = list(_ANSWER.finditer(text))
    segment = text[marks[-1].end():] if marks else text
    cells = set()
    for match in _CELL.finditer(segment):
        row = 0 if match.group(1).lower() in ("top", "upper") else 1
        col = 0 if match.group(2).lower() == "left" else 1
        cells.add(2 * row + col)
    if cells:
        return frozenset(cells)
    if _NONE.search(segment):
        return frozenset()
    return None


@dataclass(frozen=True)
class NashQuestion:
    game: OrdinalGame
    swaps: tuple[bool, bool]  # the relabelling the question shows the game under

    @property
    def payoffs(self) -> tuple[tuple[int, int], ...]:
        """(row, column) ranks per shown cell."""
        return tuple(self.game.payoffs[map_cell(cell, self.swaps)] for cell in range(4))

    @property
    def gold(self) -> frozenset[int]:
        """The pure equilibria in the shown cells (recomputed by the tests)."""
        return frozenset(map_cell(c, self.swaps) for c in self.game.nash)


def nash_questions(games: list[OrdinalGame], seed: int) -> list[NashQuestion]:
    questions = []
    for game in games:
        rng = random.Random(f"nash:{seed}:{game.number}")
        questions.append(NashQuestion(game, (rng.random() < 0.5, rng.random() < 0.5)))
    return questions


class NashQuestionState:
    """One question as a one-player, one-decision game; the return is 1 for the
    exact set of equilibria, else 0."""

    def __init__(self, question: NashQuestion, spec: GameSpec):
        self.spec = spec
        self.question = question
        self.answer: int | None = None

    def current_player(self) -> int:
        return -1 if self.answer is not None else 0

    def is_terminal(self) -> bool:
        return self.answer is not None

    def legal_actions(self) -> list[int]:
        return [] if self.is_terminal() else list(range(16))

    def action_name(self, action: int) -> str:
        return cells_name(_cells_of(action))

    def apply(self, action: int, message: str | None = None) -> None:
        if self.is_terminal():
            raise ValueError("nash question: already answered")
        if action not in range(16):
            raise ValueError(f"nash question: action {action} is not legal; legal: 0..15")
        self.answer = action

    def returns(self) -> list[float]:
        if self.answer is None:
            return [0.0]
        return [1.0 if _cells_of(self.answer) == self.question.gold else 0.0]

    def view(self, player: int) -> str:
        lines = [
            "A two-player game. The row player chooses top or bottom; the column player "
            "chooses left or right; both choose at the same time. Each player ranks the "
            "four outcomes from 4 (best) to 1 (worst):",
        ]
        for cell, (row, col) in enumerate(self.question.payoffs):
            r, c = divmod(cell, 2)
            lines.append(
                f"- {CELL_NAMES[cell]} (row plays {('top', 'bottom')[r]}, column plays "
                f"{('left', 'right')[c]}): row player gets {row}, column player gets {col}"
            )
        lines.append(
            "A cell is a pure Nash equilibrium if neither player would get more by "
            "changing only their own choice. Which cells are pure Nash equilibria?"
        )
        if self.is_terminal():
            lines.append(f"You answered: {self.action_name(self.answer)}.")
            return "\n".join(lines)
        lines.append("Legal answers: " + "; ".join(self.action_name(a) for a in range(16)))
        lines.append(
            'Answer with one line: "Answer: <cells>", the cells separated by commas, '
            'for example "Answer: top-left, bottom-right", or "Answer: none".'
        )
        return "\n".join(lines)

    def private_info(self, player: int) -> list[str]:
        return []

    def clone(self) -> "NashQuestionState":
        other = NashQuestionState(self.question, self.spec)
        other.answer = self.answer
        return other


class NashQuestionGame:
    def __init__(self, question: NashQuestion):
        self.question = question
        self.spec = GameSpec(
            id="nash_question", version=1, name="Pure Nash equilibria of a 2x2 game",
            players=1, perfect_information=True, chance=False, zero_sum=False,
            utility_range=(0.0, 1.0), max_length=1, answer_format="Answer: <cells>",
            params=(("game", question.game.number), ("swaps", "".join("01"[s] for s in question.swaps))),
        )

    def new_initial_state(self, rng: random.Random) -> NashQuestionState:
        return NashQuestionState(self.question, self.spec)


def answer_of(result: MatchResult) -> frozenset[int] | None:
    """The set an agent answered in a match: its last written answer read by
    `parse_cells`, else the action it played, else None (no readable answer)."""
    for turn in reversed(result.turns):
        parsed = parse_cells(turn.choice.completion)
        if parsed is not None:
            return parsed
    for turn in result.turns:
        if turn.valid and turn.action is not None:
            return _cells_of(turn.action)
    return None


def score_nash(questions: Sequence[NashQuestion], answers: Sequence[frozenset[int] | None],
               agent: str = "", invalid: int = 0, forfeits: int = 0) -> BenchmarkReport:
    """Exact-match accuracy, overall and per family (pure: no play here)."""
    items, by_family = [], {f: [0, 0] for f in FAMILIES}
    for q, answer in zip(questions, answers, strict=True):
        correct = answer is not None and answer == q.gold
        by_family[q.game.family][0] += correct
        by_family[q.game.family][1] += 1
        items.append({
            "game": q.game.number, "name": q.game.name, "family": q.game.family,
            "swaps": q.swaps, "gold": cells_name(q.gold),
            "answer": None if answer is None else cells_name(answer), "correct": correct,
        })
    hits = sum(item["correct"] for item in items)
    # No answer read from any question (an answer is read from the text even when the
    # move was refused): the agent never answered, so there is no accuracy.
    played = any(answer is not None for answer in answers)
    estimate = wilson_estimate if played else (lambda k, n: no_valid_play(n))
    return BenchmarkReport(
        benchmark="matrix2x2/nash", agent=agent, metric="exact-match accuracy (pure Nash set)",
        overall=estimate(hits, len(items)),
        breakdowns={"family": {f: estimate(k, n) for f, (k, n) in by_family.items() if n}},
        invalid=invalid, forfeits=forfeits, items=items,
        notes=[] if played else [f"no valid play: no answer could be read from any of the {len(items)} "
                                 f"questions ({forfeits} forfeits), so there is no score"],
    )


def run_nash_task(
    agent: Agent | str,
    games: int | Sequence[int] | None = None,
    seed: int = 0,
    rule: InvalidMoveRule = InvalidMoveRule(),
    concurrency: int = 64,
) -> BenchmarkReport:
    questions = nash_questions(select_games(games, seed), seed)
    games = [NashQuestionGame(q) for q in questions]
    with resolve_agent(agent, games[0]) as player:
        plan = [PlannedMatch(i, game, (player,), match_seed(seed, i)) for i, game in enumerate(games)]
        played, notes = play_scored(plan, rule, concurrency)
    results = list(played.values())
    report = score_nash(
        [questions[i] for i in played], [answer_of(r) for r in results], player.name,
        invalid=sum(r.record.invalid[0] for r in results),
        forfeits=sum(r.forfeit_by is not None for r in results),
    )
    report.notes += notes
    return report


# -- Task B: repeated play against fixed strategies --------------------------------------

Policy = Callable[[int, tuple[int, ...], "random.Random | None"], int]


@dataclass(frozen=True)
class Strategy:
    """A fixed strategy of the repeated game. Actions: 0 = A ("cooperate"), 1 = B.

    `policy(round, their_moves, rng)` gives the move in round `round` (0-based)
    from the other player's earlier moves; `memory(their_moves)` is everything
    later moves depend on, so `max_points` can merge histories; `rng` is None in
    that search, which only deterministic strategies allow.
    """

    name: str
    policy: Policy
    memory: Callable[[tuple[int, ...]], Hashable]
    deterministic: bool = True
    description: str = ""


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("always_cooperate", lambda t, h, rng: 0, lambda h: None, description="always A"),
        Strategy("always_defect", lambda t, h, rng: 1, lambda h: None, description="always B"),
        Strategy(
            "tit_for_tat", lambda t, h, rng: h[-1] if h else 0, lambda h: h[-1] if h else None,
            description="A first, then the other's last move (Axelrod 1984)",
        ),
        Strategy(
            "grim_trigger", lambda t, h, rng: int(1 in h), lambda h: 1 in h,
            description="A until the other ever plays B, then B for ever",
        ),
        Strategy("alternate", lambda t, h, rng: t % 2, lambda h: None, description="A, B, A, B, ..."),
        Strategy(
            "random", lambda t, h, rng: rng.randrange(2), lambda h: None, deterministic=False,
            description="A or B with probability 1/2 each round",
        ),
    )
}


def agent_payoff(game: OrdinalGame, seat: int) -> Callable[[int, int], int]:
    """u(mine, theirs): the points of the player in `seat` (0 row, 1 column)."""
    if seat == 0:
        return lambda mine, theirs: game.row[2 * mine + theirs]
    return lambda mine, theirs: game.col[2 * theirs + mine]


def max_points(game: OrdinalGame, seat: int, strategy: Strategy, rounds: int = ROUNDS) -> float:
    """The most points the player in `seat` can earn over `rounds` rounds against
    `strategy`: for a deterministic strategy, the best sequence of moves, found by
    dynamic programming over (round, the strategy's memory of our moves); for the
    random strategy, which ignores history, the expected points of playing the best
    reply to a uniform opponent each round."""
    u = agent_payoff(game, seat)
    if not strategy.deterministic:
        return rounds * max((u(a, 0) + u(a, 1)) / 2 for a in (0, 1))

    memo: dict[tuple[int, Hashable], float] = {}

    def best(t: int, mine: tuple[int, ...]) -> float:
        if t == rounds:
            return 0.0
        # Histories with the same memory make the strategy play the same from
        # round t on, so they share one value.
        key = (t, strategy.memory(mine))
        if key not in memo:
            theirs = strategy.policy(t, mine, None)
            memo[key] = max(u(a, theirs) + best(t + 1, mine + (a,)) for a in (0, 1))
        return memo[key]

    return best(0, ())


class StrategyAgent:
    """Plays a fixed strategy in the `matrix` game, from the rounds it has seen
    (`MatrixState.rounds`; the current round's pending move stays unread)."""

    def __init__(self, strategy: Strategy, name: str | None = None):
        self.strategy = strategy
        self.name = name or strategy.name

    def act(self, decisions: list[Decision]) -> list[Choice]:
        choices = []
        for d in decisions:
            rounds = getattr(d.state, "rounds", None)
            if rounds is None:
                raise SparringError(f"{self.name} plays only the repeated matrix game, not {d.state.spec.ref}")
            theirs = tuple(r[1 - d.player] for r in rounds)
            choices.append(Choice(action=self.strategy.policy(len(rounds), theirs, d.rng)))
        return choices

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class RepeatedMatch:
    game: OrdinalGame
    strategy: Strategy
    agent_seat: int  # 0 row, 1 column


def matrix_ref(game: OrdinalGame, rounds: int = ROUNDS) -> str:
    payoffs = ",".join(f"[{r},{c}]" for r, c in game.payoffs)
    return f"matrix(payoffs=[{payoffs}],actions=[{ACTIONS[0]},{ACTIONS[1]}],rounds={rounds})"


def score_repeated(matches: Sequence[RepeatedMatch], points: Sequence[float], agent: str = "",
                   rounds: int = ROUNDS, invalid: int = 0, forfeits: int = 0) -> BenchmarkReport:
    """Mean fraction of the maximum, overall, per family and per strategy (pure)."""
    items = []
    for m, p in zip(matches, points, strict=True):
        best = max_points(m.game, m.agent_seat, m.strategy, rounds)
        items.append({
            "game": m.game.number, "family": m.game.family, "strategy": m.strategy.name,
            "seat": m.agent_seat, "points": p, "max": best, "fraction": p / best,
        })

    played = forfeits < len(items)  # every match forfeited: the agent never played, so no score
    estimate = mean_estimate if played else (lambda values: no_valid_play(len(values)))

    def by(key: str, order: Sequence[str]) -> dict:
        groups = {k: [i["fraction"] for i in items if i[key] == k] for k in order}
        return {k: estimate(v) for k, v in groups.items() if v}

    notes = ["max vs random is the expected best reply to a uniform opponent, so a lucky match can exceed 1",
             "a forfeited match scores 0 points"]
    return BenchmarkReport(
        benchmark="matrix2x2/repeated", agent=agent,
        metric=f"points / max points over {rounds} rounds",
        overall=estimate([i["fraction"] for i in items]),
        breakdowns={"family": by("family", FAMILIES), "opponent": by("strategy", list(STRATEGIES))},
        invalid=invalid, forfeits=forfeits, items=items,
        notes=notes if played else [no_valid_play_note(forfeits)],
    )


def run_repeated_task(
    agent: Agent | str,
    games: int | Sequence[int] | None = None,
    seed: int = 0,
    strategies: Sequence[str] = tuple(STRATEGIES),
    rounds: int = ROUNDS,
    rule: InvalidMoveRule = InvalidMoveRule(),
    concurrency: int = 64,
) -> BenchmarkReport:
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise SparringError(f"unknown strategies {unknown}: choose from {', '.join(STRATEGIES)}")
    matches, matrices = [], []
    for game in select_games(games, seed):
        matrix = make_game(matrix_ref(game, rounds))
        for name in strategies:
            for seat in (0, 1):
                matches.append(RepeatedMatch(game, STRATEGIES[name], seat))
                matrices.append(matrix)
    opponents = {name: StrategyAgent(STRATEGIES[name]) for name in strategies}

    with resolve_agent(agent, matrices[0]) as player:
        plan = []
        for i, (m, matrix) in enumerate(zip(matches, matrices)):
            opponent = opponents[m.strategy.name]
            seats = (player, opponent) if m.agent_seat == 0 else (opponent, player)
            plan.append(PlannedMatch(i, matrix, seats, match_seed(seed, i)))
        played, notes = play_scored(plan, rule, concurrency)
    matches, results = [matches[i] for i in played], list(played.values())
    points = []
    for m, r in zip(matches, results, strict=True):
        if r.seats[m.agent_seat] != player.name:
            raise RuntimeError(f"match {r.index}: expected the agent in seat {m.agent_seat}, seats are {r.seats}")
        # A forfeit earns no points: neither the training penalty nor the game's minimum
        # (a positive number of points in these games) would be points the agent won.
        points.append(0.0 if r.forfeit_by == m.agent_seat else r.scored_returns[m.agent_seat])
    report = score_repeated(
        matches, points, player.name, rounds,
        invalid=sum(r.record.invalid[m.agent_seat] for m, r in zip(matches, results)),
        forfeits=sum(r.forfeit_by == m.agent_seat for m, r in zip(matches, results)),
    )
    report.notes += notes
    return report


def run_matrix_benchmark(
    agent: Agent | str,
    task: Literal["nash", "repeated"] = "nash",
    games: int | Sequence[int] | None = None,
    seed: int = 0,
    rule: InvalidMoveRule = InvalidMoveRule(),
    concurrency: int = 64,
) -> BenchmarkReport:
    """Run Task A ("nash") or Task B ("repeated") on all 144 games or a subset
    (`games`: a count sampled from the seed, or a list of game numbers)."""
    if task == "nash":
        return run_nash_task(agent, games, seed, rule, concurrency)
    if task == "repeated":
        return run_repeated_task(agent, games, seed, rule=rule, concurrency=concurrency)
    raise SparringError(f"unknown matrix2x2 task '{task}': use nash or repeated")
