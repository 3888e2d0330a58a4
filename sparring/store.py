"""The run store: one SQLite file per run directory, and the only module that
speaks SQL. It owns every table: matches and their turns, a training run's steps,
evaluations and exploitability checks, and the run's metadata.

Every match is written in one transaction when it ends, so an interrupted run keeps
every finished match and can be continued; a half-played match is never stored.
It also keeps a population run's members, their meta-game and each solve. The
schema carries a version: an older store is migrated when opened, a newer one is
refused with the version it has. Reading never creates tables.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sparring.errors import SparringError
from sparring.records import (
    Choice, ExploitabilityEntry, MatchRecord, MatchResult, PopulationIteration, PopulationMember, Sampling, Turn,
)

DB_NAME = "run.sqlite"
SCHEMA_VERSION = 4
# A run directory holds one kind of run. Each kind keeps its settings under its own
# meta key, which names the kind of a store written before runs recorded it.
KIND_KEYS = {"config": "play", "tournament": "tournament", "train_config": "train",
             "population_config": "population", "mirror_config": "mirror", "benchmark": "benchmark"}

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
"""

_TURN_COLUMNS = (
    "match_idx", "seq", "decision", "attempt", "seat", "agent", "view", "prompt", "completion",
    "prompt_token_ids", "token_ids", "logprobs", "action_logprobs", "option_token_ids", "sampling_mode",
    "temperature", "top_p", "policy_version", "action", "action_name", "valid", "forced", "reason",
    "message", "batch_s", "batch_size",
)
_EXPLOITABILITY_COLUMNS = ("step", "exploitability", "nash_conv", "mode", "game", "agent", "checkpoint",
                           "interval_low", "interval_high", "invalid_rate", "forfeit_exploitability")
_MATCH_COLUMNS = "idx, game, seed, seats, returns, forfeit_by, invalid, n_turns, wall_s"


def _create_tables(db: sqlite3.Connection) -> None:
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
    _create_tables(db)
    row = db.execute("SELECT value FROM meta WHERE key = 'exploitability'").fetchone()
    for e in json.loads(row[0]) if row else []:
        _insert_exploitability(db, ExploitabilityEntry(
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
    _create_tables(db)
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
        _create_tables(db)
        db.execute("ALTER TABLE turns ADD COLUMN latency_share_s REAL")
        kept = ",".join(c for c in _TURN_COLUMNS if c not in ("batch_s", "batch_size"))
        db.execute(f"INSERT INTO turns ({kept}, latency_share_s) SELECT {kept}, latency_s FROM turns_3")
        db.execute("DROP TABLE turns_3")
    columns = {row[1] for row in db.execute("PRAGMA table_info(exploitability)")}
    for name in ("invalid_rate", "forfeit_exploitability"):
        if name not in columns:  # 1 -> 2 made the table new
            db.execute(f"ALTER TABLE exploitability ADD COLUMN {name} REAL")


# version -> the step that brings a store of that version to the next
_MIGRATIONS = {1: _migrate_1_to_2, 2: _migrate_2_to_3, 3: _migrate_3_to_4}


class RunStore:
    def __init__(self, run_dir: str | Path, create: bool = False):
        self.dir = Path(run_dir)
        path = self.dir / DB_NAME
        exists = path.exists()
        if not exists and not create:
            raise SparringError(f"no run at {self.dir}: expected {path}. Check the directory, or play a run there first")
        if not exists:
            _make_run_dir(self.dir)
        try:
            self.db = sqlite3.connect(path)
            self.db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            self.db.execute("PRAGMA synchronous=NORMAL")
            if exists:
                self._upgrade(path)
            else:
                with self.db:
                    _create_tables(self.db)
                    self._put_meta("schema", SCHEMA_VERSION)
        except sqlite3.DatabaseError as exc:
            if not exists:
                raise SparringError(f"cannot write a run into {self.dir} ({exc}): choose a writable --out") from None
            raise SparringError(f"{path} is not a sparring run store ({exc})") from None

    def _upgrade(self, path: Path) -> None:
        """Bring an older store to this version, one migration at a time, in one
        transaction; refuse a store written by a newer sparring."""
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            raise SparringError(f"{path} is not a sparring run store (it has no meta table)")
        version = self.get_meta("schema") or 1  # version 1 wrote the number only when a run started
        if version > SCHEMA_VERSION:
            raise SparringError(
                f"{path} is a run store of schema version {version}, newer than this sparring's "
                f"({SCHEMA_VERSION}): upgrade sparring to read it"
            )
        with self.db:
            while version < SCHEMA_VERSION:
                _MIGRATIONS[version](self.db)
                version += 1
                self._put_meta("schema", version)

    # ---- run metadata --------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        """Set a meta value; "kind", or the settings of a kind (`KIND_KEYS`), claim the
        run for that kind first, so a store never holds two kinds of run."""
        with self.db:
            if key == "kind":
                self._claim(value)
                return
            if key in KIND_KEYS:
                self._claim(KIND_KEYS[key])
            self._put_meta(key, value)

    def _put_meta(self, key: str, value: Any) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def kind(self) -> str | None:
        """play, tournament, train, population, mirror or benchmark; None for a new store."""
        return self.get_meta("kind") or next((k for key, k in KIND_KEYS.items() if self.get_meta(key) is not None), None)

    def claim(self, kind: str) -> None:
        """Record that this store holds a `kind` run; refuse a store of another kind."""
        with self.db:
            self._claim(kind)

    def _claim(self, kind: str) -> None:
        held = self.kind()
        if held not in (None, kind):
            raise SparringError(
                f"{self.dir} holds a {held} run, and a run directory holds one kind of run: "
                f"choose another --out directory for this {kind} run"
            )
        self._put_meta("kind", kind)

    def start(self, config: dict[str, Any], kind: str = "play", growable: tuple[str, ...] = ()) -> None:
        """Claim the store for a `kind` run and record its config, or check a continued
        run has the same one. A key in `growable` may grow (a run extended with more
        matches keeps the ones it has); the stored config then takes the new value."""
        with self.db:
            self._claim(kind)
            stored = self.get_meta("config")
            if stored is None:
                self._put_meta("config", config)
                self._put_meta("created_at", time.time())
                return
            diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
            grown = [k for k in diff if k in growable and (config.get(k) or 0) > (stored.get(k) or 0)]
            if set(grown) != set(diff):
                shrunk = [k for k in diff if k in growable and k not in grown]
                hint = f" ({', '.join(shrunk)} may grow, never shrink)" if shrunk else ""
                raise SparringError(
                    f"{self.dir} already holds a run with a different config ({', '.join(diff)} differ{hint}): "
                    "choose a new --out directory, or repeat the original settings to continue it"
                )
            if grown:
                self._put_meta("config", config)

    # ---- matches -----------------------------------------------------------------

    def finished_indices(self) -> set[int]:
        return {row[0] for row in self.db.execute("SELECT idx FROM matches")}

    def write_match(self, result: MatchResult) -> None:
        """Write a finished match and all its turns in one transaction."""
        r = result.record
        with self.db:
            self.db.execute(
                "INSERT INTO matches VALUES (?,?,?,?,?,?,?,?,?,?)",
                (r.index, r.game, r.seed, json.dumps(r.seats), json.dumps(r.returns),
                 r.forfeit_by, json.dumps(r.invalid), r.turns, r.wall_s, time.time()),
            )
            self.db.executemany(
                f"INSERT INTO turns ({','.join(_TURN_COLUMNS)}) VALUES ({','.join('?' * len(_TURN_COLUMNS))})",
                [_turn_row(result.index, seq, t) for seq, t in enumerate(result.turns)],
            )

    def matches(self) -> list[MatchRecord]:
        rows = self.db.execute(f"SELECT {_MATCH_COLUMNS} FROM matches ORDER BY idx").fetchall()
        return [_match_record(r) for r in rows]

    def match(self, index: int) -> MatchRecord | None:
        row = self.db.execute(f"SELECT {_MATCH_COLUMNS} FROM matches WHERE idx = ?", (index,)).fetchone()
        return None if row is None else _match_record(row)

    def turns(self, match_index: int) -> list[Turn]:
        rows = self.db.execute(
            f"SELECT {','.join(_TURN_COLUMNS)} FROM turns WHERE match_idx = ? ORDER BY seq", (match_index,)
        )
        return [_turn(dict(zip(_TURN_COLUMNS, row))) for row in rows]

    def results(self) -> Iterator[MatchResult]:
        """Every finished match with its turns, in index order."""
        turns: dict[int, list[Turn]] = {}
        for row in self.db.execute(f"SELECT {','.join(_TURN_COLUMNS)} FROM turns ORDER BY match_idx, seq"):
            values = dict(zip(_TURN_COLUMNS, row))
            turns.setdefault(values["match_idx"], []).append(_turn(values))
        for m in self.matches():
            yield MatchResult(index=m.index, game=m.game, seed=m.seed, seats=m.seats, returns=m.returns,
                              turns=tuple(turns.get(m.index, ())), forfeit_by=m.forfeit_by, wall_s=m.wall_s)

    def answers_by_agent(self) -> dict[str, tuple[int, int]]:
        """agent -> (answers given, answers rejected as invalid); random moves played
        for an agent after its retries ran out are not its answers."""
        rows = self.db.execute("SELECT agent, COUNT(*), SUM(valid = 0) FROM turns WHERE forced = 0 GROUP BY agent")
        return {agent: (n, bad) for agent, n, bad in rows}

    # ---- training runs -------------------------------------------------------------

    def write_train_step(self, step: int, metrics: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO train_steps VALUES (?, ?, ?)", (step, json.dumps(metrics), time.time()))

    def train_steps(self) -> list[dict[str, Any]]:
        """Each logged step's metrics, in step order."""
        return [json.loads(r[0]) for r in self.db.execute("SELECT metrics FROM train_steps ORDER BY step")]

    def write_train_eval(self, step: int, opponent: str, metrics: dict[str, Any]) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO train_evals VALUES (?, ?, ?)", (step, opponent, json.dumps(metrics)))

    def train_evals(self) -> list[dict[str, Any]]:
        """Every evaluation as {"step", "opponent", **metrics}, by step and opponent."""
        rows = self.db.execute("SELECT step, opponent, metrics FROM train_evals ORDER BY step, opponent")
        return [{"step": step, "opponent": opponent, **json.loads(metrics)} for step, opponent, metrics in rows]

    def add_exploitability(self, entry: ExploitabilityEntry) -> None:
        """Record an exploitability check; a second check of the same step replaces it."""
        with self.db:
            _insert_exploitability(self.db, entry)

    def exploitability(self) -> list[ExploitabilityEntry]:
        rows = self.db.execute(
            f"SELECT {','.join(_EXPLOITABILITY_COLUMNS)} FROM exploitability ORDER BY step")
        return [
            ExploitabilityEntry(step=s, exploitability=e, nash_conv=n, mode=m, game=g, agent=a, checkpoint=c,
                                interval=(lo, hi) if lo is not None else None, invalid_rate=ir,
                                forfeit_exploitability=fe)
            for s, e, n, m, g, a, c, lo, hi, ir, fe in rows
        ]

    def rewind(self, step: int, next_match: int) -> None:
        """Forget what a training run logged after its checkpoint at `step` (whose
        next match index is `next_match`): a resumed run plays and logs it again."""
        with self.db:
            self.db.execute("DELETE FROM turns WHERE match_idx >= ?", (next_match,))
            self.db.execute("DELETE FROM matches WHERE idx >= ?", (next_match,))
            for table in ("train_steps", "train_evals", "exploitability"):
                self.db.execute(f"DELETE FROM {table} WHERE step > ?", (step,))

    # ---- populations -----------------------------------------------------------

    def add_member(self, member: PopulationMember, payoffs: dict[tuple[int, int], float],
                   half_widths: dict[tuple[int, int], float] | None = None) -> None:
        """A new member and its meta-game row and column (with the half-widths of
        their intervals, when sampled from play), in one transaction."""
        table = {k: [[a, p] for a, p in v.items()] for k, v in member.policy.items()}
        half_widths = half_widths or {}
        with self.db:
            self.db.execute("INSERT INTO population_members VALUES (?, ?, ?, ?, ?)",
                            (member.member, member.name, member.checkpoint, json.dumps(table), time.time()))
            self.db.executemany("INSERT OR REPLACE INTO metagame VALUES (?, ?, ?, ?)",
                                [(i, j, v, half_widths.get((i, j))) for (i, j), v in payoffs.items()])

    def members(self) -> list[PopulationMember]:
        rows = self.db.execute("SELECT member, name, checkpoint, policy FROM population_members ORDER BY member")
        return [PopulationMember(m, n, c, {k: {int(a): float(p) for a, p in v} for k, v in json.loads(t).items()})
                for m, n, c, t in rows]

    def metagame(self) -> dict[tuple[int, int], float]:
        return {(i, j): v for i, j, v in self.db.execute("SELECT row, col, payoff FROM metagame")}

    def metagame_half_widths(self) -> dict[tuple[int, int], float]:
        """The sampled entries' 95% interval half-widths (exact entries have none)."""
        return {(i, j): h for i, j, h in self.db.execute(
            "SELECT row, col, half_width FROM metagame WHERE half_width IS NOT NULL")}

    def add_population_iteration(self, solved: PopulationIteration) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO population_iterations VALUES (?, ?, ?, ?)",
                            (solved.iteration, json.dumps(solved.meta_strategy), solved.exploitability, solved.seconds))

    def population_iterations(self) -> list[PopulationIteration]:
        rows = self.db.execute("SELECT iteration, meta_strategy, exploitability, seconds FROM population_iterations "
                               "ORDER BY iteration")
        return [PopulationIteration(i, tuple(json.loads(m)), e, s) for i, m, e, s in rows]

    def close(self) -> None:
        self.db.close()


def _make_run_dir(path: Path) -> None:
    """Make the directory of a new store: a new or empty directory, never a file or a
    folder of other files (`--out /` or `--out ~` would strew a run among them)."""
    try:
        if path.exists() and not path.is_dir():
            raise SparringError(f"{path} is a file: a run goes into a directory. Choose another --out")
        if path.is_dir() and any(path.iterdir()):
            raise SparringError(f"{path} holds other files and no run: a new run goes into a new or empty "
                                "directory. Choose another --out")
        path.mkdir(parents=True, exist_ok=True)  # FileExistsError: a file has the name
    except OSError as exc:
        raise SparringError(f"cannot make the run directory {path} ({exc.strerror or exc}): "
                            "choose a new directory you can write to for --out") from None


# ---- rows <-> records ----------------------------------------------------------------


def _match_record(row: tuple) -> MatchRecord:
    idx, game, seed, seats, returns, forfeit_by, invalid, n_turns, wall_s = row
    return MatchRecord(index=idx, game=game, seed=seed, seats=tuple(json.loads(seats)),
                       returns=tuple(json.loads(returns)), forfeit_by=forfeit_by,
                       invalid=tuple(json.loads(invalid)), turns=n_turns, wall_s=wall_s)


def _keyed(mapping: dict | None) -> str | None:
    """A dict keyed by action as JSON (whose keys are strings)."""
    return None if mapping is None else json.dumps({str(k): v for k, v in mapping.items()})


def _unkeyed(text: str | None, value=lambda v: v) -> dict | None:
    return None if text is None else {int(k): value(v) for k, v in json.loads(text).items()}


def _turn_row(match_index: int, seq: int, t: Turn) -> tuple:
    c, s = t.choice, t.choice.sampling
    return (
        match_index, seq, t.decision, t.attempt, t.seat, t.agent, t.view, c.prompt, c.completion,
        json.dumps(c.prompt_token_ids), json.dumps(c.token_ids), json.dumps(c.logprobs),
        _keyed(c.action_logprobs), _keyed(c.option_token_ids),
        s.mode if s else None, s.temperature if s else None, s.top_p if s else None, c.policy_version,
        t.action, t.action_name, int(t.valid), int(t.forced), t.reason, c.message, c.batch_s,
        c.batch_size,
    )


def _turn(v: dict[str, Any]) -> Turn:
    choice = Choice(
        action=v["action"], reason=v["reason"] if not v["valid"] else None, message=v["message"],
        prompt=v["prompt"], completion=v["completion"],
        prompt_token_ids=tuple(json.loads(v["prompt_token_ids"] or "[]")),
        token_ids=tuple(json.loads(v["token_ids"] or "[]")), logprobs=tuple(json.loads(v["logprobs"] or "[]")),
        action_logprobs=_unkeyed(v["action_logprobs"]), option_token_ids=_unkeyed(v["option_token_ids"], tuple),
        sampling=Sampling(v["sampling_mode"], v["temperature"], v["top_p"]) if v["sampling_mode"] else None,
        policy_version=v["policy_version"], batch_s=v["batch_s"], batch_size=v["batch_size"],
    )
    return Turn(decision=v["decision"], attempt=v["attempt"], seat=v["seat"], agent=v["agent"], view=v["view"],
                choice=choice, valid=bool(v["valid"]), action_name=v["action_name"], reason=v["reason"],
                forced=bool(v["forced"]))


def _insert_exploitability(db: sqlite3.Connection, e: ExploitabilityEntry) -> None:
    low, high = e.interval if e.interval is not None else (None, None)
    db.execute(f"INSERT OR REPLACE INTO exploitability ({','.join(_EXPLOITABILITY_COLUMNS)}) "
               f"VALUES ({','.join('?' * len(_EXPLOITABILITY_COLUMNS))})",
               (e.step, e.exploitability, e.nash_conv, e.mode, e.game, e.agent, e.checkpoint, low, high,
                e.invalid_rate, e.forfeit_exploitability))
