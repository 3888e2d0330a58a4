"""The run store: one transaction per match, interrupted runs continue, exports."""

import dataclasses
import json

import pyarrow.parquet as pq
import pytest

from sparring.agents.scripted import RandomAgent
from sparring.arena.match import play_matches, rotating_plan
from sparring.arena.results import export_jsonl, export_parquet
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.store import RunStore

CONFIG = {"game": "kuhn_poker", "players": ["a", "b"], "games": 10, "seed": 3}


class Interrupt(RandomAgent):
    """Raises KeyboardInterrupt (as Ctrl-C would) on its n-th call."""

    def __init__(self, calls_before):
        super().__init__(name="b")
        self.left = calls_before

    def act(self, decisions):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return super().act(decisions)


def _play(store, agents, indices, concurrency=2):
    play_matches(rotating_plan(make_game("kuhn_poker"), agents, indices, run_seed=3), concurrency=concurrency,
                 on_match_end=store.write_match)


def test_interrupted_run_keeps_finished_matches_and_continues(tmp_path):
    store = RunStore(tmp_path / "run", create=True)
    store.start(CONFIG)
    with pytest.raises(KeyboardInterrupt):
        _play(store, [RandomAgent("a"), Interrupt(calls_before=6)], range(10))
    kept = store.finished_indices()
    assert 0 < len(kept) < 10
    # every stored match is complete: its turns end in a terminal position
    for match in store.matches():
        turns = store.turns(match.index)
        assert len(turns) == match.turns > 0
    store.close()

    store = RunStore(tmp_path / "run")
    store.start(CONFIG)  # same config: continue
    _play(store, [RandomAgent("a"), RandomAgent("b")], [i for i in range(10) if i not in kept])
    assert store.finished_indices() == set(range(10))

    fresh = RunStore(tmp_path / "fresh", create=True)
    _play(fresh, [RandomAgent("a"), RandomAgent("b")], range(10), concurrency=10)
    assert store.matches() == [dataclasses.replace(m, wall_s=s.wall_s) for m, s in zip(fresh.matches(), store.matches())]


def test_a_different_config_is_refused(tmp_path):
    store = RunStore(tmp_path, create=True)
    store.start(CONFIG)
    with pytest.raises(SparringError, match="games differ"):
        store.start({**CONFIG, "games": 11})


def test_missing_or_foreign_store(tmp_path):
    with pytest.raises(SparringError, match="no run at"):
        RunStore(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "run.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(SparringError, match="not a sparring run store"):
        RunStore(tmp_path / "bad")


def test_exports_round_trip(tmp_path):
    store = RunStore(tmp_path, create=True)
    _play(store, [RandomAgent("a"), RandomAgent("b")], range(5))
    assert export_jsonl(store.results(), tmp_path / "m.jsonl") == 5
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [len(m["turns"]) for m in lines] == [m.turns for m in store.matches()]
    rows = export_parquet(store.results(), tmp_path / "t.parquet")
    table = pq.read_table(tmp_path / "t.parquet")
    assert table.num_rows == rows == sum(m.turns for m in store.matches())
    assert {"game", "returns", "action_name", "view"} <= set(table.column_names)


def test_a_match_is_one_transaction(tmp_path):
    """A failure while writing a match leaves no partial rows behind."""
    store = RunStore(tmp_path, create=True)
    results = play_matches(rotating_plan(make_game("kuhn_poker"), [RandomAgent("a"), RandomAgent("b")], range(2), 3))
    store.write_match(results[0])
    last = results[1].turns[-1]
    unwritable = dataclasses.replace(last, choice=dataclasses.replace(last.choice, token_ids=(object(),)))
    broken = dataclasses.replace(results[1], turns=results[1].turns[:-1] + (unwritable,))
    with pytest.raises(TypeError):  # fails after the match row is inserted
        store.write_match(broken)
    assert [m.index for m in store.matches()] == [0]
    assert len(store.turns(0)) == len(results[0].turns) and store.turns(1) == []


def test_an_unfinished_generation_is_forgotten_whole_and_finished_ones_kept(tmp_path):
    from sparring.records import Generation, PlaybookVersion, Promotion

    store = RunStore(tmp_path / "e", create=True)
    game = make_game("kuhn_poker")
    _play(store, [RandomAgent(), RandomAgent()], range(0, 6))  # generation 1's matches
    store.add_playbook(PlaybookVersion(0, None, 0, "[]", ""))
    store.add_playbook(PlaybookVersion(1, 0, 1, '[{"when": "a", "do": "b", "because": "c", "evidence": []}]', "1. x"))
    store.add_promotion(Promotion(1, 0, "promote", "won", 12, 0, 0, 2.9))
    store.finish_generation(Generation(1, 0, 1, 1, "feedback", "RULE: ...", 100, 20, 1.5, None))
    _play(store, [RandomAgent(), RandomAgent()], range(6, 10))  # generation 2, killed before it ended
    store.add_playbook(PlaybookVersion(2, 1, 2, "[]", ""))
    store.add_promotion(Promotion(2, 1, "reject", "lost", 0, 7, 0, -2.3))

    store.forget_generation(2, first_match=6)
    assert [v.version for v in store.playbooks()] == [0, 1]
    assert store.promotions() == [Promotion(1, 0, "promote", "won", 12, 0, 0, 2.9)]
    assert store.generations() == [Generation(1, 0, 1, 1, "feedback", "RULE: ...", 100, 20, 1.5, None)]
    assert store.finished_indices() == set(range(6)) and store.turns(6) == []
    assert game.spec.ref in store.matches()[0].game
    store.close()


def test_the_match_overview_agrees_with_the_matches(tmp_path):
    store = RunStore(tmp_path, create=True)
    assert store.match_overview() == (0, (), ())
    kuhn, ttt = make_game("kuhn_poker"), make_game("tictactoe")
    a, b, c = RandomAgent("a"), RandomAgent("b"), RandomAgent("c")
    for plan in (rotating_plan(ttt, [b, c], range(3), 0), rotating_plan(kuhn, [a, b], range(3, 6), 0)):
        play_matches(plan, on_match_end=store.write_match)
    matches = store.matches()
    assert store.match_overview() == (len(matches), tuple(dict.fromkeys(m.game for m in matches)),
                                      tuple(dict.fromkeys(x for m in matches for x in m.seats)))
    assert store.match_overview()[1:] == (("tictactoe@1", "kuhn_poker@1"), ("b", "c", "a"))
