"""Benchmarks: the 144-game catalogue against its definition and known facts, the
two matrix tasks end to end, and NRA / the GTBench runner on hand-worked cases."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from sparring.agents.base import Choice
from sparring.agents.llm import LLMAgent, LLMConfig, extract_action
from sparring.agents.scripted import FixedActionAgent, RandomAgent
from sparring.arena.match import play_matches, rotating_plan
from sparring.backends.base import Completion
from sparring.eval.benchmarks import matrix2x2 as mx
from sparring.eval.benchmarks.gtbench import run_gtbench
from sparring.eval.benchmarks.stats import bootstrap_ci, nra, nra_estimate, wilson_estimate
from sparring.eval.benchmarks.topology import (
    CELL_NAMES,
    all_games,
    family_counts,
    find_game,
    map_cell,
)
from sparring.errors import SparringError
from sparring.games.core import legal_action_names
from sparring.games.matrix import PRESETS
from sparring.games.registry import make_game


def brute_force_nash(payoffs) -> set[int]:
    """Pure equilibria straight from the definition, written apart from the
    library: no unilateral deviation pays. payoffs[cell] = (row, column)."""
    out = set()
    for r, c in itertools.product((0, 1), repeat=2):
        row_dev = payoffs[2 * (1 - r) + c][0]
        col_dev = payoffs[2 * r + (1 - c)][1]
        here = payoffs[2 * r + c]
        if here[0] >= row_dev and here[1] >= col_dev:
            out.add(2 * r + c)
    return out


# -- the catalogue ----------------------------------------------------------------------


def _relabellings(row, col):
    """All tables of one game: swap rows and/or columns."""
    for sr, sc in itertools.product((0, 1), repeat=2):
        perm = [2 * ((cell // 2) ^ sr) + ((cell % 2) ^ sc) for cell in range(4)]
        yield tuple(row[perm[i]] for i in range(4)), tuple(col[perm[i]] for i in range(4))


def test_576_tables_fall_into_144_games_and_78_up_to_player_swap():
    # Orbits counted by brute force over all 24 x 24 rank tables, independently of
    # the catalogue's orientation rule. 144: Robinson & Goforth (2005); 78:
    # Rapoport & Guyer (1966), who also identify games that differ by the players.
    perms = list(itertools.permutations((1, 2, 3, 4)))
    classes, classes_with_players = set(), set()
    for row, col in itertools.product(perms, perms):
        orbit = frozenset(_relabellings(row, col))
        classes.add(orbit)
        # Swapping players: the column player becomes the row player (transpose).
        t = (0, 2, 1, 3)
        swapped = frozenset(_relabellings(tuple(col[t[i]] for i in range(4)), tuple(row[t[i]] for i in range(4))))
        classes_with_players.add(frozenset((orbit, swapped)))
    assert len(classes) == 144
    assert len(classes_with_players) == 78
    catalogue = {frozenset(_relabellings(g.row, g.col)) for g in all_games()}
    assert catalogue == classes  # each game exactly once


def test_every_stored_equilibrium_set_matches_brute_force():
    games = all_games()
    assert [g.number for g in games] == list(range(1, 145))
    for game in games:
        assert set(game.nash) == brute_force_nash(game.payoffs), game.label
    counts = {k: sum(len(g.nash) == k for g in games) for k in (0, 1, 2)}
    assert counts == {0: 18, 1: 108, 2: 18}  # the known split of strict 2x2 games


def test_family_split_is_pinned_and_win_win_is_the_aligned_layer():
    assert family_counts() == {
        "win-win": 36, "biased": 44, "second-best": 12, "unfair": 27, "inferior": 7, "cyclic": 18,
    }
    for game in all_games():
        aligned = game.row.index(4) == game.col.index(4)
        assert (game.family == "win-win") == aligned
        assert (game.family == "cyclic") == (not game.nash)


@pytest.mark.parametrize(
    "payoffs, nash, family",
    [
        (PRESETS["prisoners_dilemma"].payoffs, {3}, "inferior"),  # defect, defect
        (PRESETS["stag_hunt"].payoffs, {0, 3}, "win-win"),  # both stag, both hare
        (PRESETS["chicken"].payoffs, {1, 2}, "unfair"),  # one swerves
        # Battle of the sexes with the miscoordinations ranked (the preset ties them).
        (((3, 2), (1, 0), (0, 1), (2, 3)), {0, 3}, "biased"),
        (((2, 2), (1, 4), (4, 1), (3, 3)), {3}, "second-best"),  # deadlock
        (((4, 1), (1, 4), (2, 3), (3, 2)), set(), "cyclic"),  # matching-pennies-like
    ],
)
def test_textbook_games_are_found_with_their_equilibria(payoffs, nash, family):
    game, swaps = find_game(payoffs)
    assert {map_cell(c, swaps) for c in game.nash} == nash
    assert game.family == family


def test_textbook_games_carry_their_names():
    named = {g.name: g for g in all_games() if g.name}
    assert set(named) >= {"prisoner's dilemma", "stag hunt", "chicken", "battle of the sexes"}
    assert find_game(PRESETS["prisoners_dilemma"].payoffs)[0] is named["prisoner's dilemma"]


# -- Task A -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, cells",
    [
        ("Answer: top-left, bottom-right", {0, 3}),
        ("I think... Answer: Bottom right and upper-left", {0, 3}),
        ("Answer: none", set()),
        ("There is no pure equilibrium.", set()),
        ("top-left is tempting. Answer: lower right", {3}),
        ("Answer: the second option", None),
        ("", None),
    ],
)
def test_parse_cells_is_tolerant(text, cells):
    parsed = mx.parse_cells(text)
    assert (None if parsed is None else set(parsed)) == cells


def test_question_gold_matches_the_shown_table_and_names_read_back():
    questions = mx.nash_questions(all_games(), seed=3)
    assert len({q.swaps for q in questions}) == 4  # positions are varied
    for q in questions:
        assert set(q.gold) == brute_force_nash(q.payoffs)
    state = mx.NashQuestionGame(questions[0]).new_initial_state(random.Random(0))
    names = legal_action_names(state)
    assert len(names) == 16 and "none" in names
    # The arena's extraction reads the canonical comma form as one action.
    action, _ = extract_action("Answer: top-left, bottom-right", names)
    assert state.action_name(action) == "top-left, bottom-right"
    for name in CELL_NAMES:
        assert name in state.view(0)


class OracleAgent:
    """Answers every question correctly, through the state's action ids."""

    name = "oracle"

    def act(self, decisions):
        return [Choice(action=sum(1 << c for c in d.state.question.gold)) for d in decisions]

    def close(self):
        pass


def test_nash_task_scores_oracle_one_and_random_near_one_sixteenth():
    report = mx.run_matrix_benchmark(OracleAgent(), "nash", seed=0)
    assert report.overall.value == 1.0 and report.overall.n == 144
    assert sum(e.n for e in report.breakdowns["family"].values()) == 144
    random_report = mx.run_matrix_benchmark(RandomAgent(), "nash", seed=0)
    est = random_report.overall
    assert est.low <= 1 / 16 <= est.high  # chance level of 16 answers
    assert "win-win" in random_report.table()


class FlakyOracle(OracleAgent):
    """The oracle behind a backend that gives no answer for some questions (a
    share `failing` of them, chosen by the match seed)."""

    def __init__(self, failing: float):
        self.failing = failing

    def act(self, decisions):
        fails = [d.match_seed % 1000 < 1000 * self.failing for d in decisions]
        answers = iter(super().act([d for d, fail in zip(decisions, fails) if not fail]))
        return [Choice(action=None, reason="backend error: HTTP 503", backend_error="HTTP 503") if fail
                else next(answers) for fail in fails]


def test_a_benchmark_scores_only_what_a_backend_did_not_void():
    report = mx.run_matrix_benchmark(FlakyOracle(0.3), "nash", seed=0)
    assert report.overall.value == 1.0  # a void question is not a wrong answer
    assert 20 < 144 - report.overall.n < 70 and report.forfeits == 0
    assert any(f"{144 - report.overall.n} of 144 matches void" in note for note in report.notes)
    with pytest.raises(SparringError, match="failed in the backend, not in play"):
        mx.run_matrix_benchmark(FlakyOracle(1.0), "repeated", games=4, seed=0)


class FlakyRandom(RandomAgent):
    def act(self, decisions):
        return [Choice(action=None, reason="backend error: timeout", backend_error="timeout") if d.match_seed % 4 == 0
                else choice for d, choice in zip(decisions, super().act(decisions))]


def test_the_repeated_task_scores_the_matches_left_in_their_own_places():
    whole = mx.run_matrix_benchmark(RandomAgent(), "repeated", games=6, seed=0)
    flaky = mx.run_matrix_benchmark(FlakyRandom(), "repeated", games=6, seed=0)
    kept = {(i["game"], i["strategy"], i["seat"]) for i in flaky.items}
    assert 0 < len(whole.items) - len(flaky.items) < len(whole.items) / 2
    # each match left keeps its own score: random play is seeded by the match
    assert [i for i in whole.items if (i["game"], i["strategy"], i["seat"]) in kept] == flaky.items


class ScriptedBackend:
    """A fake model: writes each question's gold answer in a loose format that
    the arena's generic extraction misreads, and scores options by length."""

    name = "scripted-backend"

    def generate(self, requests):
        out = []
        for r in requests:
            prompt = r.messages[1][1]  # the first user turn holds the question
            q = next(q for q in _QUESTIONS if q_view(q) in prompt)
            cells = sorted(q.gold, reverse=True)  # reversed order, joined by "and"
            words = " and ".join(CELL_NAMES[c].replace("-", " ") for c in cells) or "none"
            out.append(Completion(text=f"Let me check each cell.\nAnswer: {words}"))
        return out

    def score(self, requests):
        from sparring.backends.base import ScoredOption

        return [[ScoredOption([], [], [-len(o)]) for o in r.options] for r in requests]

    def close(self):
        pass


_QUESTIONS = mx.nash_questions(all_games()[:12], seed=0)


def q_view(q):
    return mx.NashQuestionGame(q).new_initial_state(random.Random(0)).view(0).split("Legal answers")[0]


def test_free_text_llm_answers_are_scored_tolerantly():
    agent = LLMAgent(ScriptedBackend(), LLMConfig(mode="free"), name="scripted")
    report = mx.run_matrix_benchmark(agent, "nash", games=[q.game.number for q in _QUESTIONS], seed=0)
    assert report.overall.value == 1.0
    # Scored choice answers through the same states: every move legal.
    scored = LLMAgent(ScriptedBackend(), LLMConfig(mode="scored", temperature=0), name="scored")
    report = mx.run_matrix_benchmark(scored, "nash", games=[1, 2, 3], seed=0)
    assert report.invalid == 0 and report.overall.n == 3


def test_score_nash_is_pure():
    qs = mx.nash_questions(all_games()[:2], seed=0)
    report = mx.score_nash(qs, [qs[0].gold, None])
    assert report.overall.value == 0.5 and report.items[1]["answer"] is None


# -- Task B -------------------------------------------------------------------------------


def brute_force_max(game, seat, strategy, rounds):
    """Best total over all 2^rounds move sequences (deterministic strategies)."""
    u = mx.agent_payoff(game, seat)
    best = -math.inf
    for mine in itertools.product((0, 1), repeat=rounds):
        total = sum(u(mine[t], strategy.policy(t, mine[:t], None)) for t in range(rounds))
        best = max(best, total)
    return best


def test_max_points_on_the_prisoners_dilemma_by_hand():
    pd = find_game(PRESETS["prisoners_dilemma"].payoffs)[0]  # ranks: R=3, T=4, P=2, S=1
    expected = {
        "always_cooperate": 40,  # defect every round: T
        "always_defect": 20,  # defect every round: P
        "tit_for_tat": 31,  # cooperate 9 rounds, defect in the last
        "grim_trigger": 31,
        "alternate": 30,  # defect throughout: T against C, P against D
        "random": 30,  # defect is the best reply to 50/50: (4 + 2) / 2 per round
    }
    for name, points in expected.items():
        for seat in (0, 1):  # the PD is symmetric
            assert mx.max_points(pd, seat, mx.STRATEGIES[name], 10) == points, name


def test_max_points_equals_brute_force_over_all_move_sequences():
    for game in all_games()[::29]:
        for strategy in mx.STRATEGIES.values():
            if strategy.deterministic:
                for seat in (0, 1):
                    assert mx.max_points(game, seat, strategy, 6) == brute_force_max(game, seat, strategy, 6)


class SequenceAgent:
    """Plays the given actions in order."""

    name = "sequence"

    def __init__(self, actions):
        self.actions = iter(actions)

    def act(self, decisions):
        return [Choice(action=next(self.actions)) for _ in decisions]

    def close(self):
        pass


def test_strategy_agents_read_the_history():
    game = make_game("matrix(rounds=4)")
    tft = mx.StrategyAgent(mx.STRATEGIES["tit_for_tat"])
    seq = SequenceAgent([1, 0, 1, 1])  # the other seat plays D, C, D, D
    (result,) = play_matches(rotating_plan(game, [tft, seq], [0], run_seed=0))
    played = [t.action for t in result.turns if t.seat == 0]
    assert played == [0, 1, 0, 1]  # C first, then copies the other's last move


def test_repeated_task_fractions():
    pd = find_game(PRESETS["prisoners_dilemma"].payoffs)[0]
    defector = FixedActionAgent(mx.ACTIONS[1])  # always B = defect in the catalogue orientation
    report = mx.run_matrix_benchmark(defector, "repeated", games=[pd.number], seed=0)
    by = {(i["strategy"], i["seat"]): i for i in report.items}
    assert len(by) == 12  # six strategies x both seats
    assert by[("always_cooperate", 0)]["fraction"] == 1.0
    assert by[("always_cooperate", 1)]["fraction"] == 1.0
    assert by[("always_defect", 0)]["fraction"] == 1.0
    assert by[("tit_for_tat", 0)]["points"] == 4 + 9 * 2  # T once, then P
    assert report.breakdowns["family"]["inferior"].n == 12


def test_repeated_task_random_subset_runs_fast():
    report = mx.run_matrix_benchmark("random", "repeated", games=8, seed=1)
    assert report.overall.n == 8 * 6 * 2
    assert 0.5 < report.overall.value < 1.0
    assert set(report.breakdowns["opponent"]) == set(mx.STRATEGIES)
    # The subset depends only on the seed.
    assert mx.select_games(8, 1) == mx.select_games(8, 1) != mx.select_games(8, 2)


# -- NRA and GTBench --------------------------------------------------------------------


def test_nra_hand_worked():
    assert nra([(1, -1), (0, 0), (-1, 1), (1, -1)]) == pytest.approx((2 + 0 - 2 + 2) / (2 + 0 + 2 + 2))
    assert nra([(0, 0), (0, 0)]) == 0.0  # all draws: 0/0 defined as 0
    assert nra([(3, 1)]) == pytest.approx(0.5)  # general-sum: (3-1)/(3+1)
    assert nra([(1, -1)] * 5) == 1.0 and nra([(-1, 1)] * 5) == -1.0


def test_bootstrap_interval_brackets_the_estimate():
    rng = random.Random(0)
    pairs = [(1, -1)] * 30 + [(-1, 1)] * 10
    est = nra_estimate(pairs, rng)
    assert est.value == pytest.approx(0.5) and est.low < 0.5 < est.high
    assert bootstrap_ci([(1, -1)] * 10, nra, rng) == (1.0, 1.0)  # no spread, no width
    w = wilson_estimate(0, 10)
    assert w.low == 0.0 and 0.2 < w.high < 0.35  # Wilson: not zero-width at 0%


def test_gtbench_tiny_run_covers_every_game():
    report = run_gtbench("random", games=2, seed=0, opponents=["random"])
    assert len(report.breakdowns) == 7 and report.overall.n == 14
    assert {i["seat"] for i in report.items} == {0, 1}


def test_gtbench_against_solvers_and_random_vs_random_is_even():
    report = run_gtbench("random", games=4, seed=0, only=["tictactoe", "kuhn_poker"])
    assert set(report.breakdowns["tictactoe"]) == {"vs mcts", "vs random"}
    assert set(report.breakdowns["kuhn_poker"]) == {"vs cfr", "vs random"}
    assert report.breakdowns["tictactoe"]["vs mcts"].value <= 0  # MCTS never loses to random
    even = run_gtbench("random", games=200, seed=0, only=["tictactoe"], opponents=["random"])
    est = even.breakdowns["tictactoe"]["vs random"]
    assert est.low <= 0 <= est.high and abs(est.value) < 0.15


# -- scores that are not there -------------------------------------------------------------


class MuteAgent:
    """Never gives a legal answer: every match is forfeited."""

    name = "mute"

    def act(self, decisions):
        return [Choice(action=None, reason="no answer", completion="...") for _ in decisions]

    def close(self):
        pass


def test_repeated_task_with_every_match_forfeited_has_no_score():
    report = mx.run_matrix_benchmark(MuteAgent(), "repeated", games=[1], seed=0)
    assert report.forfeits == 12 and math.isnan(report.overall.value)
    table = report.table()
    assert "no valid play: the agent forfeited all 12 matches" in table
    assert "-0.031" not in table and " n/a " in table


def test_nash_task_with_every_question_forfeited_has_no_accuracy():
    report = mx.run_matrix_benchmark(MuteAgent(), "nash", games=[1, 2], seed=0)
    assert report.forfeits == 2 and math.isnan(report.overall.value)
    assert "no valid play" in report.table()


def test_repeated_task_forfeit_scores_zero_points():
    pd = find_game(PRESETS["prisoners_dilemma"].payoffs)[0]
    report = mx.run_matrix_benchmark(MuteAgent(), "repeated", games=[pd.number], seed=0,
                                     rule=mx.InvalidMoveRule(retries=0, penalty=-1.0))
    assert {i["points"] for i in report.items} == {0.0}


def test_zero_width_and_single_sample_intervals_say_so():
    from sparring.eval.benchmarks.stats import Estimate, mean_estimate

    assert Estimate(-1.0, -1.0, -1.0, 2).interval_text() == "none (all 2 alike)"
    assert mean_estimate([0.5]).interval_text() == "none (n<2)"
    assert mean_estimate([0.0, 1.0]).interval_text().startswith("[")


def test_gtbench_all_forfeits_reports_no_valid_play_not_minus_one():
    report = run_gtbench(MuteAgent(), games=2, seed=0, only=["tictactoe"], opponents=["random"])
    assert report.forfeits == 2 and math.isnan(report.overall.value)
    table = report.table()
    assert "[-1.000, -1.000]" not in table and "no valid play" in table
