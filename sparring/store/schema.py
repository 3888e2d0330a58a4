"""The run store's schema: every table, its version, and the migrations that bring
an older store to this version, one step per version."""

from __future__ import annotations

import json
import sqlite3

from sparring.records import ExploitabilityEntry

DB_NAME = "run.sqlite"
SCHEMA_VERSION = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS matches (
    idx INTEGER PRIMARY KEY,          -- match index within the run
    game TEXT NOT NULL,               -- game reference with version
    seed INTEGER NOT NULL,
    seats TEXT NOT NULL,              -- JSON list: agent name per seat
    returns TEXT NOT NULL,            -- JSON list: return per seat
    forfeit_by INTEGER,               -- seat that forfeited, if any
    invalid TEXT NOT NULL,            -- JSON list: invalid answers per seat
    n_turns INTEGER NOT NULL,
    wall_s REAL NOT NULL,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    match_idx INTEGER NOT NULL REFERENCES matches(idx),
    seq INTEGER NOT NULL,             -- order of the attempt within the match
    decision INTEGER NOT NULL,        -- decision number (retries share it)
    attempt INTEGER NOT NULL,
    seat INTEGER NOT NULL,
    agent TEXT NOT NULL,
    view TEXT NOT NULL,
    prompt TEXT,
    completion TEXT,
    prompt_token_ids TEXT,            -- JSON list: the prompt as the model saw it
    token_ids TEXT,                   -- JSON list of sampled token ids
    logprobs TEXT,                    -- JSON list of behaviour log-probs
    action_logprobs TEXT,             -- JSON {action: log pi(action)} where the agent knows it
    option_token_ids TEXT,            -- JSON {action: token ids} of every scored answer
    sampling_mode TEXT,               -- free or scored, NULL for agents that do not sample a model
    temperature REAL,
    top_p REAL,
    policy_version TEXT,              -- the weights or adapter that answered
    action INTEGER,
    action_name TEXT,
    valid INTEGER NOT NULL,
    forced INTEGER NOT NULL,
    reason TEXT,
    message TEXT,
    batch_s REAL,                     -- measured wall time of the agent call that answered (NULL: not timed)
    batch_size INTEGER,               -- decisions that call answered together, all with this batch_s
    PRIMARY KEY (match_idx, seq)
);
CREATE TABLE IF NOT EXISTS turn_signals (
    match_idx INTEGER NOT NULL,
    seq INTEGER NOT NULL,             -- the turn (turns.seq) a training step learned from
    step INTEGER NOT NULL,            -- that step
    reward REAL NOT NULL,             -- the return it was given (a forfeit: the shaping penalty)
    advantage REAL NOT NULL,
    PRIMARY KEY (match_idx, seq)
);
CREATE TABLE IF NOT EXISTS train_steps (
    step INTEGER PRIMARY KEY, metrics TEXT NOT NULL, logged_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS train_evals (
    step INTEGER NOT NULL, opponent TEXT NOT NULL, metrics TEXT NOT NULL,
    PRIMARY KEY (step, opponent));
CREATE TABLE IF NOT EXISTS exploitability (
    step INTEGER PRIMARY KEY,         -- training step (or iteration) of the measured policy
    exploitability REAL,
    nash_conv REAL NOT NULL,
    mode TEXT NOT NULL,               -- exact or sampled
    game TEXT NOT NULL,
    agent TEXT,
    checkpoint TEXT,
    interval_low REAL,                -- bootstrap 95% interval (sampled mode)
    interval_high REAL,
    invalid_rate REAL,                -- share of sampled answers that named no legal move
    forfeit_exploitability REAL       -- with every invalid answer played as a forfeit (sampled mode)
);
CREATE TABLE IF NOT EXISTS population_members (
    member INTEGER PRIMARY KEY,       -- index in the order added
    name TEXT NOT NULL,
    checkpoint TEXT,                  -- run-relative checkpoint of a model member
    policy TEXT NOT NULL,             -- JSON {information state: [[action, probability], ...]}
    added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS metagame (
    row INTEGER NOT NULL,             -- member index
    col INTEGER NOT NULL,
    payoff REAL NOT NULL,             -- row's expected return against col, both seats averaged
    half_width REAL,                  -- of its 95% interval when sampled from play, NULL when exact
    PRIMARY KEY (row, col)
);
CREATE TABLE IF NOT EXISTS population_iterations (
    iteration INTEGER PRIMARY KEY,
    meta_strategy TEXT NOT NULL,      -- JSON list, one probability per member
    exploitability REAL,              -- of the mixture, exact (NULL where the game is too large)
    seconds REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS playbooks (
    version INTEGER PRIMARY KEY,      -- 0: the agent with no playbook
    parent INTEGER,                   -- the version it was revised from
    generation INTEGER NOT NULL,      -- the generation that wrote it
    rules TEXT NOT NULL,              -- JSON list of {when, do, because, evidence}
    notes TEXT NOT NULL               -- the playbook as the agent reads it
);
CREATE TABLE IF NOT EXISTS promotions (
    version INTEGER PRIMARY KEY,      -- the candidate
    parent INTEGER NOT NULL,
    decision TEXT NOT NULL,           -- promote or reject
    reason TEXT NOT NULL,
    wins INTEGER NOT NULL,            -- pairs of matches (one seed, seats swapped) the candidate won
    losses INTEGER NOT NULL,
    ties INTEGER NOT NULL,
    llr REAL NOT NULL                 -- the sequential test's log-likelihood ratio at its decision
);
CREATE TABLE IF NOT EXISTS generations (
    generation INTEGER PRIMARY KEY,
    parent INTEGER NOT NULL,          -- the best version it started from
    candidate INTEGER,                -- the version its revision made (NULL: the revision held no rule)
    best INTEGER NOT NULL,            -- the best version after it
    feedback TEXT NOT NULL,           -- the critic's words
    revision TEXT NOT NULL,           -- the reviser's text as written
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    seconds REAL NOT NULL,
    event TEXT                        -- what happened instead of a candidate
);
"""

TURN_COLUMNS = (
    "match_idx", "seq", "decision", "attempt", "seat", "agent", "view", "prompt", "completion",
    "prompt_token_ids", "token_ids", "logprobs", "action_logprobs", "option_token_ids", "sampling_mode",
    "temperature", "top_p", "policy_version", "action", "action_name", "valid", "forced", "reason",
    "message", "batch_s", "batch_size",
)
EXPLOITABILITY_COLUMNS = ("step", "exploitability", "nash_conv", "mode", "game", "agent", "checkpoint",
                           "interval_low", "interval_high", "invalid_rate", "forfeit_exploitability")
MATCH_COLUMNS = "idx, game, seed, seats, returns, forfeit_by, invalid, n_turns, wall_s"


def create_tables(db: sqlite3.Connection) -> None:
    # One statement at a time: executescript would commit the caller's transaction.
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def _migrate_1_to_2(db: sqlite3.Connection) -> None:
    """Version 2: turns name the seat and record the sampling settings, the policy
    version and every scored answer's tokens; the trainer's tables and the
    exploitability checks (a meta list in version 1) become the store's own."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(turns)")}
    if "player" in columns:
        db.execute("ALTER TABLE turns RENAME COLUMN player TO seat")
    for name, kind in (("option_token_ids", "TEXT"), ("sampling_mode", "TEXT"), ("temperature", "REAL"),
                       ("top_p", "REAL"), ("policy_version", "TEXT")):
        if name not in columns:
            db.execute(f"ALTER TABLE turns ADD COLUMN {name} {kind}")
    create_tables(db)
    row = db.execute("SELECT value FROM meta WHERE key = 'exploitability'").fetchone()
    for e in json.loads(row[0]) if row else []:
        insert_exploitability(db, ExploitabilityEntry(
            step=e["step"], exploitability=e["exploitability"], nash_conv=e["nash_conv"], mode=e["mode"],
            game=e["game"], agent=e.get("agent"), checkpoint=e.get("checkpoint"),
            interval=tuple(e["interval"]) if e.get("interval") else None,
        ))
    db.execute("DELETE FROM meta WHERE key = 'exploitability'")


def _migrate_2_to_3(db: sqlite3.Connection) -> None:
    """Version 3: a meta-game entry may be sampled from play, with the half-width of
    its interval, and a solve in a game too large to walk has no exploitability."""
    if "half_width" not in {row[1] for row in db.execute("PRAGMA table_info(metagame)")}:  # 1 -> 2 made it new
        db.execute("ALTER TABLE metagame ADD COLUMN half_width REAL")
    db.execute("ALTER TABLE population_iterations RENAME TO population_iterations_2")
    create_tables(db)
    db.execute("INSERT INTO population_iterations SELECT * FROM population_iterations_2")
    db.execute("DROP TABLE population_iterations_2")


def _migrate_3_to_4(db: sqlite3.Connection) -> None:
    """Version 4: a turn records the measured time of the agent call that answered
    it and how many decisions shared that call; version 3 stored that time divided
    by the decisions, kept as latency_share_s for the turns it stored. An
    exploitability check records the invalid-answer rate and the exploitability
    with invalid answers played as forfeits."""
    if "latency_s" in {row[1] for row in db.execute("PRAGMA table_info(turns)")}:  # else made new by 2 -> 3
        db.execute("ALTER TABLE turns RENAME TO turns_3")
        create_tables(db)
        db.execute("ALTER TABLE turns ADD COLUMN latency_share_s REAL")
        kept = ",".join(c for c in TURN_COLUMNS if c not in ("batch_s", "batch_size"))
        db.execute(f"INSERT INTO turns ({kept}, latency_share_s) SELECT {kept}, latency_s FROM turns_3")
        db.execute("DROP TABLE turns_3")
    columns = {row[1] for row in db.execute("PRAGMA table_info(exploitability)")}
    for name in ("invalid_rate", "forfeit_exploitability"):
        if name not in columns:  # 1 -> 2 made the table new
            db.execute(f"ALTER TABLE exploitability ADD COLUMN {name} REAL")


def _migrate_4_to_5(db: sqlite3.Connection) -> None:
    """Version 5: an evolution run's playbooks, promotions and generations (new tables)."""
    create_tables(db)


def _migrate_5_to_6(db: sqlite3.Connection) -> None:
    """Version 6: the reward and advantage each trained turn received (a new table)."""
    create_tables(db)


# version -> the step that brings a store of that version to the next
MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4, 4: _migrate_4_to_5, 5: _migrate_5_to_6}


def insert_exploitability(db: sqlite3.Connection, e: ExploitabilityEntry) -> None:
    low, high = e.interval if e.interval is not None else (None, None)
    db.execute(f"INSERT OR REPLACE INTO exploitability ({','.join(EXPLOITABILITY_COLUMNS)}) "
               f"VALUES ({','.join('?' * len(EXPLOITABILITY_COLUMNS))})",
               (e.step, e.exploitability, e.nash_conv, e.mode, e.game, e.agent, e.checkpoint, low, high,
                e.invalid_rate, e.forfeit_exploitability))
