"""`RunStore`: a run directory's store, read and written through typed records."""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sparring.errors import SparringError
from sparring.records import (
    Choice,
    ExploitabilityEntry,
    Generation,
    MatchRecord,
    MatchResult,
    PlaybookVersion,
    PopulationIteration,
    PopulationMember,
    Promotion,
    Sampling,
    Turn,
)
from sparring.store.schema import (
    DB_NAME,
    EXPLOITABILITY_COLUMNS,
    MATCH_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    TURN_COLUMNS,
    create_tables,
    insert_exploitability,
)

# A run directory holds one kind of run. Each kind keeps its settings under its own
# meta key, which names the kind of a store written before runs recorded it.
KIND_KEYS = {"config": "play", "tournament": "tournament", "train_config": "train",
             "population_config": "population", "mirror_config": "mirror", "benchmark": "benchmark",
             "evolve_config": "evolve"}


class RunStore:
    def __init__(self, run_dir: str | Path, create: bool = False, read_only: bool = False):
        """Open RUN_DIR's store, made with `create`; `read_only` never writes (no
        migration: a store of another schema version is refused, saying so), so a
        viewer can read while a run writes."""
        self.dir = Path(run_dir)
        path = self.dir / DB_NAME
        exists = path.exists()
        if not exists and not create:
            raise SparringError(f"no run at {self.dir}: expected {path}. Check the directory, or play a run there first")
        if read_only:
            self._open_read_only(path)
            return
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
                    create_tables(self.db)
                    self._put_meta("schema", SCHEMA_VERSION)
        except sqlite3.DatabaseError as exc:
            if not exists:
                raise SparringError(f"cannot write a run into {self.dir} ({exc}): choose a writable --out") from None
            raise SparringError(f"{path} is not a sparring run store ({exc})") from None

    def _open_read_only(self, path: Path) -> None:
        """With no write-ahead log beside the store, no writer has it open (the last
        one to close removes the log), so it is read as an immutable file: SQLite
        would otherwise make its -wal and -shm files in the run directory for this
        reader. With a log, a writer may be at work: read through it, as usual."""
        immutable = not path.with_name(DB_NAME + "-wal").exists()
        try:
            self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro{'&immutable=1' if immutable else ''}",
                                      uri=True, factory=_ReadingConnection)
            self.db.path = path
            tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = (self.get_meta("schema") or 1) if "meta" in tables else None
        except sqlite3.DatabaseError as exc:
            raise SparringError(f"{path} is not a sparring run store, or is damaged ({exc})") from None
        if version is None:
            raise SparringError(f"{path} is not a sparring run store (it has no meta table)")
        if version != SCHEMA_VERSION:
            self.db.close()
            raise SparringError(f"{path} is a run store of schema version {version}, this sparring reads version "
                                f"{SCHEMA_VERSION}: " + ("open it once with `sparring show` to migrate it"
                                                         if version < SCHEMA_VERSION else "upgrade sparring to read it"))

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
        if version == SCHEMA_VERSION:
            return
        # Opened by hand: sqlite3 begins no transaction before DDL (ALTER, CREATE), which
        # would then commit at once, and a migration killed half-way would lose data.
        self.db.execute("BEGIN IMMEDIATE")
        with self.db:
            while version < SCHEMA_VERSION:
                MIGRATIONS[version](self.db)
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
                f"INSERT INTO turns ({','.join(TURN_COLUMNS)}) VALUES ({','.join('?' * len(TURN_COLUMNS))})",
                [_turn_row(result.index, seq, t) for seq, t in enumerate(result.turns)],
            )

    def matches(self) -> list[MatchRecord]:
        rows = self.db.execute(f"SELECT {MATCH_COLUMNS} FROM matches ORDER BY idx").fetchall()
        return [_match_record(r) for r in rows]

    def match_overview(self) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
        """(matches, games, agents) of the run, games and agents in order of first
        appearance, without reading every match (a page lists many runs)."""
        count = self.db.execute("SELECT COUNT(*) FROM matches").fetchone()[0]
        games = [g for g, _ in self.db.execute("SELECT game, MIN(idx) AS first FROM matches GROUP BY game ORDER BY first")]
        seatings = self.db.execute("SELECT seats, MIN(idx) AS first FROM matches GROUP BY seats ORDER BY first")
        agents = dict.fromkeys(a for seats, _ in seatings for a in json.loads(seats))
        return count, tuple(games), tuple(agents)

    def match(self, index: int) -> MatchRecord | None:
        row = self.db.execute(f"SELECT {MATCH_COLUMNS} FROM matches WHERE idx = ?", (index,)).fetchone()
        return None if row is None else _match_record(row)

    def turns(self, match_index: int) -> list[Turn]:
        rows = self.db.execute(
            f"SELECT {','.join(TURN_COLUMNS)} FROM turns WHERE match_idx = ? ORDER BY seq", (match_index,)
        )
        return [_turn(dict(zip(TURN_COLUMNS, row))) for row in rows]

    def results(self) -> Iterator[MatchResult]:
        """Every finished match with its turns, in index order."""
        turns: dict[int, list[Turn]] = {}
        for row in self.db.execute(f"SELECT {','.join(TURN_COLUMNS)} FROM turns ORDER BY match_idx, seq"):
            values = dict(zip(TURN_COLUMNS, row))
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

    def write_turn_signals(self, step: int, signals: list[tuple[int, int, float, float]]) -> None:
        """What training step `step` learned from each turn: (match index, the turn's
        place in its match, reward, advantage)."""
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO turn_signals VALUES (?, ?, ?, ?, ?)",
                                [(m, seq, step, reward, advantage) for m, seq, reward, advantage in signals])

    def turn_signals(self, match_index: int) -> dict[int, tuple[int, float, float]]:
        """A match's trained turns: its place in the match -> (step, reward, advantage)."""
        rows = self.db.execute("SELECT seq, step, reward, advantage FROM turn_signals WHERE match_idx = ?",
                               (match_index,))
        return {seq: (step, reward, advantage) for seq, step, reward, advantage in rows}

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
            insert_exploitability(self.db, entry)

    def exploitability(self) -> list[ExploitabilityEntry]:
        rows = self.db.execute(
            f"SELECT {','.join(EXPLOITABILITY_COLUMNS)} FROM exploitability ORDER BY step")
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
            for table in ("turn_signals", "turns"):
                self.db.execute(f"DELETE FROM {table} WHERE match_idx >= ?", (next_match,))
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

    # ---- evolution runs --------------------------------------------------------------

    def add_playbook(self, v: PlaybookVersion) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO playbooks VALUES (?, ?, ?, ?, ?)",
                            (v.version, v.parent, v.generation, v.rules, v.notes))

    def playbooks(self) -> list[PlaybookVersion]:
        rows = self.db.execute("SELECT version, parent, generation, rules, notes FROM playbooks ORDER BY version")
        return [PlaybookVersion(*row) for row in rows]

    def add_promotion(self, p: Promotion) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO promotions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (p.version, p.parent, p.decision, p.reason, p.wins, p.losses, p.ties, p.llr))

    def promotions(self) -> list[Promotion]:
        rows = self.db.execute("SELECT version, parent, decision, reason, wins, losses, ties, llr "
                               "FROM promotions ORDER BY version")
        return [Promotion(*row) for row in rows]

    def finish_generation(self, g: Generation) -> None:
        """Record a finished generation and, in the same transaction, that no generation
        is open (meta `evolve_open`): a kill between the two cannot drop it."""
        with self.db:
            self.db.execute("DELETE FROM meta WHERE key = 'evolve_open'")
            self.db.execute("INSERT OR REPLACE INTO generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (g.generation, g.parent, g.candidate, g.best, g.feedback, g.revision, g.tokens_in,
                             g.tokens_out, g.seconds, g.event))

    def generations(self) -> list[Generation]:
        rows = self.db.execute("SELECT generation, parent, candidate, best, feedback, revision, tokens_in, "
                               "tokens_out, seconds, event FROM generations ORDER BY generation")
        return [Generation(*row) for row in rows]

    def forget_generation(self, generation: int, first_match: int) -> None:
        """Drop what an unfinished generation stored, from `generation` on: its matches
        (from `first_match`), its versions and their promotions, so it is played again."""
        with self.db:
            self.db.execute("DELETE FROM promotions WHERE version IN "
                            "(SELECT version FROM playbooks WHERE generation >= ?)", (generation,))
            self.db.execute("DELETE FROM playbooks WHERE generation >= ?", (generation,))
            self.db.execute("DELETE FROM generations WHERE generation >= ?", (generation,))
            self.db.execute("DELETE FROM turns WHERE match_idx >= ?", (first_match,))
            self.db.execute("DELETE FROM matches WHERE idx >= ?", (first_match,))

    def close(self) -> None:
        self.db.close()


class DamagedStore(SparringError):
    """A store that opened but cannot be read (a damaged or half-copied file)."""


class _ReadingConnection(sqlite3.Connection):
    """A read-only store's connection: a file the database finds malformed, wherever
    a read meets it (a damaged page may lie deep in the file), is a DamagedStore
    naming the file."""

    path: Path

    def execute(self, sql: str, parameters=()) -> sqlite3.Cursor:
        return self.cursor(_ReadingCursor).execute(sql, parameters)


class _ReadingCursor(sqlite3.Cursor):
    def _guarded(self, read, *args):
        try:
            return read(*args)
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # its subclasses: a locked file, a write refused...
                raise
            raise DamagedStore(f"{self.connection.path} cannot be read ({exc}): it may be damaged or "
                               "half-written") from None

    def execute(self, sql: str, parameters=()) -> sqlite3.Cursor:
        return self._guarded(super().execute, sql, parameters)

    def fetchone(self):
        return self._guarded(super().fetchone)

    def fetchall(self) -> list:
        return self._guarded(super().fetchall)

    def __next__(self):
        return self._guarded(super().__next__)


def new_run_dir(parent: Path, prefix: str) -> Path:
    """A new, empty run directory `parent/<prefix>-<date>-<time>-<microseconds>`, made
    here and exclusively (a short random suffix where the name is taken), so two runs
    started at once never share one. OSError where `parent` cannot hold it."""
    now = time.time()
    name = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{int(now % 1 * 1e6):06d}"
    parent.mkdir(parents=True, exist_ok=True)
    path = parent / name
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            path = parent / f"{name}-{secrets.token_hex(3)}"


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
