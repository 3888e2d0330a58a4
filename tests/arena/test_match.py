"""Lockstep play: batching, seat rotation, reproducibility, the invalid-move rule."""

import pytest

from sparring.agents.base import Choice
from sparring.agents.scripted import RandomAgent
from sparring.arena.match import (
    InvalidMoveRule,
    PlannedMatch,
    forfeit_outcome,
    match_seed,
    play_matches,
    rotating_plan,
    watching_matches,
)
from sparring.errors import SparringError
from sparring.games.registry import make_game


class Recording(RandomAgent):
    """A random agent that records the size of every batch it is given."""

    def __init__(self, name):
        super().__init__(name=name)
        self.batches = []

    def act(self, decisions):
        self.batches.append(len(decisions))
        return super().act(decisions)


class Stubborn:
    """Answers illegally `bad` times per decision, then plays the first legal move."""

    def __init__(self, bad, name="stubborn"):
        self.bad, self.name, self.feedback = bad, name, []

    def act(self, decisions):
        out = []
        for d in decisions:
            self.feedback.append(d.rejected[-1] if d.rejected else None)
            if d.attempt < self.bad:
                out.append(Choice(action=None, reason="gibberish", completion="???"))
            else:
                out.append(Choice(action=d.state.legal_actions()[0]))
        return out


def test_one_batched_call_per_agent_per_tick():
    game = make_game("tictactoe")
    a, b = Recording("a"), Recording("b")
    results = play_matches(rotating_plan(game, [a, b], range(20), run_seed=1), concurrency=20)
    # tic-tac-toe lasts at most 9 decisions: each agent is called at most once per tick
    assert len(a.batches) <= 9 and len(b.batches) <= 9
    # at the first tick half the matches wait on a (seat 0) and half on b
    assert a.batches[0] == 10 and b.batches[0] == 10
    assert sum(a.batches) + sum(b.batches) == sum(len(r.turns) for r in results)


def test_seats_rotate_between_matches():
    results = play_matches(rotating_plan(make_game("kuhn_poker"), [RandomAgent("x"), RandomAgent("y")], range(6), run_seed=0))
    assert [r.seats for r in results] == [("x", "y"), ("y", "x")] * 3


def _transcript(results):
    return [(r.seed, r.returns, [(t.seat, t.action, t.view) for t in r.turns]) for r in results]


def test_same_seed_same_transcripts_whatever_the_concurrency():
    game = make_game("liars_dice")
    agents = [RandomAgent("p"), RandomAgent("q")]
    first = play_matches(rotating_plan(game, agents, range(12), run_seed=5), concurrency=12)
    again = play_matches(rotating_plan(game, agents, range(12), run_seed=5), concurrency=3)
    other = play_matches(rotating_plan(game, agents, range(12), run_seed=6), concurrency=12)
    assert _transcript(first) == _transcript(again)
    assert _transcript(first) != _transcript(other)


def test_retry_with_feedback_then_valid():
    stubborn = Stubborn(bad=1)
    results = play_matches(rotating_plan(make_game("tictactoe"), [stubborn, RandomAgent("r")], [0], run_seed=0),
                           rule=InvalidMoveRule(retries=1))
    [result] = results
    assert result.forfeit_by is None
    assert result.record.invalid[0] == sum(1 for t in result.turns if t.seat == 0 and t.valid)
    assert ("???", "gibberish") in stubborn.feedback  # the retry carried the answer and the reason


def test_forfeit_is_the_games_loss_and_the_penalty_shapes_only_the_training_reward():
    rule = InvalidMoveRule(retries=2, then="forfeit", penalty=-3.0, opponent_reward=0.5)
    [result] = play_matches(rotating_plan(make_game("kuhn_poker"), [Stubborn(bad=99), RandomAgent("r")], [0], 0), rule)
    assert result.forfeit_by == 0
    assert result.returns == (-3.0, 0.5)  # the training reward the trainer reads (learn/rollout.py)
    # Kuhn poker's returns lie in [-2, 2] (OpenSpiel's min/max utility): the offender
    # gets the game's minimum, the opponent its negation, so the match stays zero-sum.
    assert result.scored_returns == (-2.0, 2.0)
    assert result.record.returns == (-2.0, 2.0)  # what results, ratings and the store see
    assert [t.attempt for t in result.turns] == [0, 1, 2]
    assert not any(t.valid for t in result.turns)


def test_forfeit_outcome_of_a_general_sum_game_gives_the_others_the_maximum():
    spec = make_game("matrix(preset=stag_hunt)").spec
    low, high = spec.utility_range
    assert not spec.zero_sum
    assert forfeit_outcome(spec, 1) == (high, low)


def test_random_move_after_retries_finishes_the_match():
    rule = InvalidMoveRule(retries=0, then="random")
    [result] = play_matches(rotating_plan(make_game("tictactoe"), [Stubborn(bad=99), RandomAgent("r")], [0], 0), rule)
    assert result.forfeit_by is None
    forced = [t for t in result.turns if t.forced]
    assert forced and all(t.seat == 0 and t.valid for t in forced)
    assert sum(result.returns) == 0


def test_wrong_number_of_agents_is_refused():
    with pytest.raises(SparringError, match="needs 2 players"):
        play_matches(rotating_plan(make_game("tictactoe"), [RandomAgent()], [0], 0))
    with pytest.raises(SparringError, match="retries"):
        InvalidMoveRule(retries=-1)


class Batching(Recording):
    wants_batches = True


def test_a_batching_agent_sees_every_live_match_at_once():
    """Against a scripted agent, the model's batch is all live matches, not half."""
    model = Batching("model")
    play_matches(rotating_plan(make_game("tictactoe"), [model, RandomAgent("r")], range(16), run_seed=2), concurrency=16)
    assert model.batches[0] == 16


def test_matches_that_a_scripted_move_ends_are_replaced_before_the_batched_call():
    """While matches wait to start, every batch of the model is full; once it is
    not, the list has run out and batches only shrink."""
    model = Batching("model")
    play_matches(rotating_plan(make_game("tictactoe"), [model, RandomAgent("r")], range(60), run_seed=3), concurrency=8)
    first_short = next(i for i, size in enumerate(model.batches) if size < 8)
    assert first_short > 5
    assert model.batches[first_short:] == sorted(model.batches[first_short:], reverse=True)


def test_a_seating_function_plays_several_pairings_in_one_call():
    a, b, c = (Batching(n) for n in "abc")
    pairings = [(a, b), (b, c), (a, c)]
    game = make_game("kuhn_poker")
    results = play_matches([PlannedMatch(i, game, pairings[i % 3], match_seed(0, i)) for i in range(6)])
    assert [r.seats for r in results] == [("a", "b"), ("b", "c"), ("a", "c")] * 2
    assert a.batches[0] == 4  # a opens in both of its pairings: one call for all four


class _FlakyBackendAgent:
    """Plays random moves, except that its backend fails at the first decision of
    every match whose seed is odd."""

    name = "flaky"

    def act(self, decisions):
        return [Choice(action=None, reason="backend error: HTTP 503", backend_error="HTTP 503")
                if d.match_seed % 2 else Choice(action=d.rng.choice(d.state.legal_actions())) for d in decisions]

    def close(self):
        pass


def test_a_backend_failure_voids_its_match_and_nothing_else():
    game = make_game("kuhn_poker")
    plan = rotating_plan(game, [_FlakyBackendAgent(), RandomAgent()], range(40), run_seed=1)
    ended, voided = [], {}
    results = play_matches(plan, InvalidMoveRule(retries=3), on_match_end=ended.append, on_match_void=voided.__setitem__)
    failing = {p.index for p in plan if p.seed % 2}
    assert 0 < len(failing) < 40 and set(voided) == failing
    assert all(reason == "flaky: HTTP 503" for reason in voided.values())
    assert [r.index for r in results] == sorted(r.index for r in ended) == sorted(set(range(40)) - failing)
    assert all(r.forfeit_by is None for r in results)  # no failure became anyone's forfeit


def test_a_watcher_sees_every_match_planned_and_ended_finished_or_void():
    # One watcher over two plays, one with voided matches: what it counts is what was
    # planned, and every match, finished or void, ends exactly once.
    game = make_game("kuhn_poker")
    counts = {"planned": 0, "ended": 0}

    def watch(planned, ended):
        counts["planned"] += planned
        counts["ended"] += ended

    with watching_matches(watch):
        play_matches(rotating_plan(game, [RandomAgent(), RandomAgent()], range(7), run_seed=0))
        play_matches(rotating_plan(game, [_FlakyBackendAgent(), RandomAgent()], range(10), run_seed=1), concurrency=3)
    play_matches(rotating_plan(game, [RandomAgent(), RandomAgent()], range(5), run_seed=0))  # not watched
    assert counts == {"planned": 17, "ended": 17}
