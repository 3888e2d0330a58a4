"""The store's schema version: a version-1 run directory (as sparring wrote them
before the store owned every table) is migrated when opened, keeping every match,
turn and exploitability check; a version-2 population keeps its members, meta-game
and solves; a store from a newer sparring is refused."""

import dataclasses
import json
import sqlite3

import pytest

from sparring.errors import SparringError
from sparring.store import DB_NAME, SCHEMA_VERSION, RunStore

# Version 1's tables, as its store.py and trainer created them.
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE matches (idx INTEGER PRIMARY KEY, game TEXT NOT NULL, seed INTEGER NOT NULL,
    seats TEXT NOT NULL, returns TEXT NOT NULL, forfeit_by INTEGER, invalid TEXT NOT NULL,
    n_turns INTEGER NOT NULL, wall_s REAL NOT NULL, finished_at REAL NOT NULL);
CREATE TABLE turns (match_idx INTEGER NOT NULL REFERENCES matches(idx), seq INTEGER NOT NULL,
    decision INTEGER NOT NULL, attempt INTEGER NOT NULL, player INTEGER NOT NULL, agent TEXT NOT NULL,
    view TEXT NOT NULL, prompt TEXT, completion TEXT, prompt_token_ids TEXT, token_ids TEXT, logprobs TEXT,
    action_logprobs TEXT, action INTEGER, action_name TEXT, valid INTEGER NOT NULL, forced INTEGER NOT NULL,
    reason TEXT, message TEXT, latency_s REAL NOT NULL, PRIMARY KEY (match_idx, seq));
CREATE TABLE train_steps (step INTEGER PRIMARY KEY, metrics TEXT NOT NULL, logged_at REAL NOT NULL);
"""


def v1_run(path):
    db = sqlite3.connect(path / DB_NAME)
    db.executescript(V1_SCHEMA)
    entry = {"step": 10, "checkpoint": "checkpoints/step-000010", "exploitability": 0.345, "nash_conv": 0.69,
             "interval": [0.30, 0.45], "mode": "sampled", "agent": "policy", "game": "kuhn_poker"}
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("schema", "1"), ("config", json.dumps({"game": "kuhn_poker"})),
                                                      ("exploitability", json.dumps([entry]))])
    db.execute("INSERT INTO matches VALUES (0, 'kuhn_poker@1', 7, '[\"a\", \"b\"]', '[1.0, -1.0]', NULL, '[1, 0]', 3, 0.1, 0)")
    db.execute("INSERT INTO turns VALUES (0, 0, 0, 0, 0, 'a', 'view', 'p', 'Answer: fold', '[1, 2]', '[3]', '[-0.5]', "
               "NULL, NULL, NULL, 0, 0, 'it names no legal move', NULL, 0.2)")
    db.execute("INSERT INTO turns VALUES (0, 1, 0, 1, 0, 'a', 'view', 'p', 'Answer: bet', '[1, 2]', '[4]', '[-0.1]', "
               "'{\"0\": -2.3, \"1\": -0.1}', 1, 'bet', 1, 0, NULL, NULL, 0.2)")
    db.execute("INSERT INTO train_steps VALUES (1, '{\"step\": 1, \"loss\": 0.5}', 0)")
    db.commit()
    db.close()


def test_a_version_1_store_is_migrated_with_everything_kept(tmp_path):
    v1_run(tmp_path)
    store = RunStore(tmp_path)
    assert store.get_meta("schema") == SCHEMA_VERSION == 6
    [match] = store.matches()
    assert (match.index, match.seats, match.returns, match.invalid) == (0, ("a", "b"), (1.0, -1.0), (1, 0))
    rejected, played = store.turns(0)
    assert (rejected.seat, rejected.valid, rejected.reason, rejected.choice.completion) == (0, False, "it names no legal move", "Answer: fold")
    assert (played.action, played.action_name, played.choice.action_logprobs) == (1, "bet", {0: -2.3, 1: -0.1})
    assert played.choice.sampling is None and played.choice.policy_version is None
    # Version 3 and before stored a batch's time divided by its decisions: kept under its
    # own name, never read as a measured batch time.
    assert (played.choice.batch_s, played.choice.batch_size) == (None, None)
    assert store.db.execute("SELECT latency_share_s FROM turns ORDER BY seq").fetchall() == [(0.2,), (0.2,)]
    assert store.train_steps() == [{"step": 1, "loss": 0.5}]
    [entry] = store.exploitability()
    assert (entry.step, entry.exploitability, entry.interval, entry.checkpoint) == (10, 0.345, (0.30, 0.45), "checkpoints/step-000010")
    assert (entry.invalid_rate, entry.forfeit_exploitability) == (None, None)
    assert store.get_meta("exploitability") is None  # moved into its table, not copied
    store.write_match(dataclasses.replace(next(store.results()), index=1))  # the migrated table takes new turns
    assert [len(store.turns(i)) for i in (0, 1)] == [2, 2]
    store.close()
    assert RunStore(tmp_path).get_meta("schema") == 6  # opening again migrates nothing


# Version 2's population tables, as its store.py created them.
V2_POPULATION = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE population_members (member INTEGER PRIMARY KEY, name TEXT NOT NULL, checkpoint TEXT,
    policy TEXT NOT NULL, added_at REAL NOT NULL);
CREATE TABLE metagame (row INTEGER NOT NULL, col INTEGER NOT NULL, payoff REAL NOT NULL, PRIMARY KEY (row, col));
CREATE TABLE population_iterations (iteration INTEGER PRIMARY KEY, meta_strategy TEXT NOT NULL,
    exploitability REAL NOT NULL, seconds REAL NOT NULL);
INSERT INTO meta VALUES ('schema', '2');
INSERT INTO population_members VALUES (0, 'uniform', NULL, '{"0": [[0, 0.5], [1, 0.5]]}', 0);
INSERT INTO metagame VALUES (0, 0, 0.0);
INSERT INTO population_iterations VALUES (0, '[1.0]', 0.4583, 1.5);
"""


def test_a_version_2_population_is_migrated_with_everything_kept(tmp_path):
    db = sqlite3.connect(tmp_path / DB_NAME)
    db.executescript(V2_POPULATION)
    db.close()
    store = RunStore(tmp_path)
    assert store.get_meta("schema") == 6
    [member] = store.members()
    assert (member.name, member.policy) == ("uniform", {"0": {0: 0.5, 1: 0.5}})
    assert store.metagame() == {(0, 0): 0.0} and store.metagame_half_widths() == {}
    [solved] = store.population_iterations()
    assert (solved.meta_strategy, solved.exploitability, solved.seconds) == ((1.0,), 0.4583, 1.5)
    store.add_population_iteration(dataclasses.replace(solved, iteration=1, exploitability=None))  # now allowed
    assert store.population_iterations()[1].exploitability is None


def test_a_newer_store_is_refused_with_its_version(tmp_path):
    RunStore(tmp_path, create=True).set_meta("schema", SCHEMA_VERSION + 1)
    with pytest.raises(SparringError, match=f"schema version {SCHEMA_VERSION + 1}, newer than this sparring's"):
        RunStore(tmp_path)


def test_reading_creates_no_table(tmp_path):
    RunStore(tmp_path, create=True).close()
    tables = lambda: {r[0] for r in sqlite3.connect(tmp_path / DB_NAME).execute("SELECT name FROM sqlite_master")}
    before = tables()
    store = RunStore(tmp_path)
    store.matches(), store.train_steps(), store.train_evals(), store.exploitability()
    store.close()
    assert tables() == before


def test_read_only_reads_without_writing_and_refuses_another_version(tmp_path):
    v1_run(tmp_path)
    before = (tmp_path / DB_NAME).read_bytes()
    with pytest.raises(SparringError, match="schema version 1, this sparring reads version .* open it once"):
        RunStore(tmp_path, read_only=True)
    assert (tmp_path / DB_NAME).read_bytes() == before  # not migrated
    RunStore(tmp_path).close()  # migrated by a writer
    store = RunStore(tmp_path, read_only=True)
    assert [m.index for m in store.matches()] == [0]
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.db.execute("DELETE FROM matches")
    store.close()


def test_a_migration_killed_half_way_changes_nothing(tmp_path, monkeypatch):
    # sqlite3 begins no transaction before DDL by itself: without one opened by hand the
    # turns table's rename would commit at once and a failure after it lose every turn.
    from sparring.store import run_store, schema

    v1_run(tmp_path)
    monkeypatch.setattr(run_store, "SCHEMA_VERSION", 3)
    RunStore(tmp_path).close()  # a version-3 store, as the last sparring left it
    monkeypatch.setattr(run_store, "SCHEMA_VERSION", SCHEMA_VERSION)
    migrate = schema.MIGRATIONS[3]

    def killed(db):
        migrate(db)
        raise KeyboardInterrupt  # as if the process stopped after the rebuild, before the commit

    monkeypatch.setitem(schema.MIGRATIONS, 3, killed)
    with pytest.raises(KeyboardInterrupt):
        RunStore(tmp_path)
    monkeypatch.setitem(schema.MIGRATIONS, 3, migrate)
    store = RunStore(tmp_path)
    assert [t.choice.completion for t in store.turns(0)] == ["Answer: fold", "Answer: bet"]
    assert store.db.execute("SELECT latency_share_s FROM turns").fetchall() == [(0.2,), (0.2,)]
    store.close()


def test_damage_deep_in_a_store_is_a_clear_error_wherever_a_read_meets_it(tmp_path):
    """Page 1 (the schema) intact, pages in the middle overwritten: the store opens,
    and the read that meets the damage says which file and that it is damaged."""
    from sparring.agents.scripted import RandomAgent
    from sparring.arena.match import play_matches, rotating_plan
    from sparring.games.registry import make_game

    store = RunStore(tmp_path, create=True)
    plan = rotating_plan(make_game("tictactoe"), [RandomAgent("a"), RandomAgent("b")], range(300), 0)
    play_matches(plan, on_match_end=store.write_match)
    store.close()
    path = tmp_path / DB_NAME
    data = bytearray(path.read_bytes())
    middle = len(data) // 2 // 4096 * 4096
    data[middle:middle + 8 * 4096] = b"\xa5" * (8 * 4096)
    path.write_bytes(bytes(data))
    reader = RunStore(tmp_path, read_only=True)
    with pytest.raises(SparringError, match=f"{DB_NAME} cannot be read .*damaged or half-written"):
        for index in range(300):
            reader.turns(index)
    reader.close()
