"""Result summaries: self-play seats kept apart, against hand-computed means."""

from __future__ import annotations

import pytest

from sparring.arena.results import self_play, summarize
from sparring.records import MatchRecord, MatchResult
from sparring.store import RunStore


def record(index, seats, returns):
    return MatchRecord(index=index, game="kuhn_poker@1", seed=0, seats=tuple(seats), returns=tuple(returns),
                       forfeit_by=None, invalid=(0, 0), turns=0, wall_s=0.0)


# cfr against itself: the first seat wins 3 of 4 matches by 1.
SELF_PLAY = [record(k, ("cfr", "cfr"), (1, -1) if k < 3 else (-1, 1)) for k in range(4)]


def test_pooled_self_play_cancels_and_by_seat_shows_each_seat():
    [pooled] = summarize(SELF_PLAY)
    assert pooled.mean_return[0] == 0.0 and pooled.games == 8
    first, second = summarize(SELF_PLAY, by_seat=True)
    assert (first.agent, first.seat, first.games, first.wins) == ("cfr", 0, 4, 3)
    assert first.mean_return[0] == pytest.approx(0.5) and second.mean_return[0] == pytest.approx(-0.5)
    # sample sd of (1, 1, 1, -1) is 1: half-width 1.96 * 1 / sqrt(4)
    assert first.mean_return[1] == pytest.approx(0.98)
    assert self_play(SELF_PLAY) and not self_play([record(0, ("a", "b"), (1, -1))])


def test_by_seat_keeps_agents_in_order_of_first_appearance():
    matches = [record(0, ("b", "a"), (1, -1)), record(1, ("a", "b"), (0, 0))]
    assert [(s.agent, s.seat) for s in summarize(matches, by_seat=True)] == [("b", 0), ("b", 1), ("a", 0), ("a", 1)]


def test_play_table_shows_each_seat_of_a_self_play_run(tmp_path, capsys):
    from sparring.cli.app import console
    from sparring.cli.play import print_results

    store = RunStore(tmp_path / "run", create=True)
    for m in SELF_PLAY:
        store.write_match(MatchResult(index=m.index, game=m.game, seed=0, seats=m.seats, returns=m.returns, turns=()))
    width, console.width = console.width, 200
    try:
        print_results(store)
    finally:
        console.width = width
    out = capsys.readouterr().out
    assert "cfr (seat 1)" in out and "+0.500 ± 0.980" in out
    assert "cfr (seat 2)" in out and "-0.500 ± 0.980" in out
    store.close()
