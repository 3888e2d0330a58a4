"""What the critic reads: a game in words, rejected answers with their reason, the
forfeit, the outcome, and what each player held, from the match's own deal."""

import random

from sparring.agents.scripted import RandomAgent
from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan
from sparring.games.registry import make_game
from sparring.learn.evolve.critic import fill, sample_games, transcript
from sparring.records import Choice


class Mute:
    name = "mute"

    def act(self, decisions):
        return [Choice(action=None, reason="it names no legal move", completion="\x1b[31mI fold?") for _ in decisions]

    def close(self):
        pass


def test_a_forfeited_kuhn_game_in_words():
    game = make_game("kuhn_poker")
    [result] = play_matches(rotating_plan(game, [Mute(), RandomAgent()], [0], run_seed=3),
                            InvalidMoveRule(retries=0))
    dealt = game.new_initial_state(random.Random(result.seed))  # the deal comes from the seed
    text = transcript(game, result, reveal=True)
    assert text.splitlines() == [
        "Match 0 (Player 1 = mute, Player 2 = random):",
        "  Player 1 answered '␛[31mI fold?': rejected, it names no legal move",  # control characters drawn
        "  Player 1 forfeited (no legal answer).",
        f"  Revealed at the end: Player 1: {dealt.private_info(0)[0]}; Player 2: {dealt.private_info(1)[0]}",
        "  Result: Player 1 -2, Player 2 +2",
    ]
    assert "Revealed" not in transcript(game, result, reveal=False)


def test_placeholders_fill_and_other_braces_stay():
    assert fill("{game}: {x} {unknown}", game="Kuhn", x=3) == "Kuhn: 3 {unknown}"


def test_the_sample_is_drawn_from_the_seed_and_kept_in_match_order():
    game = make_game("kuhn_poker")
    results = play_matches(rotating_plan(game, [RandomAgent(), RandomAgent()], range(10), run_seed=0))
    picked = sample_games(results, 4, seed=5)
    assert [r.index for r in picked] == sorted(r.index for r in picked) and len(picked) == 4
    assert [r.index for r in sample_games(results, 4, seed=5)] == [r.index for r in picked]
