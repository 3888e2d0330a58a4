"""The run store: one SQLite file per run directory.

Every match is written in one transaction when it ends, so an interrupted run keeps
every finished match and can be continued; a half-played match is never stored.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sparring.arena.match import MatchResult, Turn
from sparring.errors import SparringError

DB_NAME = "run.sqlite"
SCHEMA_VERSION = 1

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
    player INTEGER NOT NULL,
    agent TEXT NOT NULL,
    view TEXT NOT NULL,
    prompt TEXT,
    completion TEXT,
    prompt_token_ids TEXT,            -- JSON list: the prompt as the model saw it
    token_ids TEXT,                   -- JSON list of sampled token ids
    logprobs TEXT,                    -- JSON list of behaviour log-probs
    action_logprobs TEXT,             -- JSON {action: log pi(action)} in scored mode
    action INTEGER,
    action_name TEXT,
    valid INTEGER NOT NULL,
    forced INTEGER NOT NULL,
    reason TEXT,
    message TEXT,
    latency_s REAL NOT NULL,
    PRIMARY KEY (match_idx, seq)
);
"""

_TURN_COLUMNS = (
    "match_idx", "seq", "decision", "attempt", "player", "agent", "view", "prompt",
    "completion", "prompt_token_ids", "token_ids", "logprobs", "action_logprobs", "action", "action_name",
    "valid", "forced", "reason", "message", "latency_s",
)


class RunStore:
    def __init__(self, run_dir: str | Path, create: bool = False):
        self.dir = Path(run_dir)
        path = self.dir / DB_NAME
        if not path.exists() and not create:
            raise SparringError(f"no run at {self.dir}: expected {path}. Check the directory, or play a run there first")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise SparringError(f"{path} is not a sparring run store ({exc})") from None

    # ---- run metadata --------------------------------------------------------------

    def get_meta(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def start(self, config: dict[str, Any]) -> None:
        """Record a new run's config, or check a continued run has the same one."""
        stored = self.get_meta("config")
        if stored is None:
            with self.db:
                self.db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [("config", json.dumps(config)), ("schema", json.dumps(SCHEMA_VERSION)),
                     ("created_at", json.dumps(time.time()))],
                )
            return
        if stored != config:
            diff = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
            raise SparringError(
                f"{self.dir} already holds a run with a different config ({', '.join(diff)} "
                "differ): choose a new --out directory, or repeat the original settings to continue it"
            )

    # ---- matches -----------------------------------------------------------------

    def finished_indices(self) -> set[int]:
        return {row[0] for row in self.db.execute("SELECT idx FROM matches")}

    def write_match(self, result: MatchResult) -> None:
        """Write a finished match and all its turns in one transaction."""
        with self.db:
            r = match_record(result)
            self.db.execute(
                "INSERT INTO matches VALUES (?,?,?,?,?,?,?,?,?,?)",
                (r["index"], r["game"], r["seed"], json.dumps(r["seats"]), json.dumps(r["returns"]),
                 r["forfeit_by"], json.dumps(r["invalid"]), r["n_turns"], r["wall_s"], time.time()),
            )
            self.db.executemany(
                f"INSERT INTO turns VALUES ({','.join('?' * len(_TURN_COLUMNS))})",
                [_turn_row(result.index, seq, t) for seq, t in enumerate(result.turns)],
            )

    def matches(self) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT idx, game, seed, seats, returns, forfeit_by, invalid, n_turns, wall_s FROM matches ORDER BY idx"
        ).fetchall()
        return [
            {"index": r[0], "game": r[1], "seed": r[2], "seats": json.loads(r[3]),
             "returns": json.loads(r[4]), "forfeit_by": r[5], "invalid": json.loads(r[6]),
             "n_turns": r[7], "wall_s": r[8]}
            for r in rows
        ]

    def answers_by_agent(self) -> dict[str, tuple[int, int]]:
        """agent -> (answers given, answers rejected as invalid); random moves played
        for an agent after its retries ran out are not its answers."""
        rows = self.db.execute("SELECT agent, COUNT(*), SUM(valid = 0) FROM turns WHERE forced = 0 GROUP BY agent")
        return {agent: (n, bad) for agent, n, bad in rows}

    def turns(self, match_index: int | None = None) -> Iterator[dict[str, Any]]:
        query = f"SELECT {','.join(_TURN_COLUMNS)} FROM turns"
        args: tuple = ()
        if match_index is not None:
            query += " WHERE match_idx = ?"
            args = (match_index,)
        for row in self.db.execute(query + " ORDER BY match_idx, seq", args):
            turn = dict(zip(_TURN_COLUMNS, row))
            for key in ("prompt_token_ids", "token_ids", "logprobs", "action_logprobs"):
                turn[key] = json.loads(turn[key]) if turn[key] is not None else None
            turn["valid"], turn["forced"] = bool(turn["valid"]), bool(turn["forced"])
            yield turn

    # ---- export ------------------------------------------------------------------

    def export_jsonl(self, path: str | Path) -> int:
        """One JSON object per match, with its turns; returns the number written."""
        matches = self.matches()
        turns: dict[int, list] = {m["index"]: [] for m in matches}
        for turn in self.turns():
            turns[turn["match_idx"]].append(turn)
        with open(path, "w") as f:
            for match in matches:
                f.write(json.dumps({**match, "turns": turns[match["index"]]}) + "\n")
        return len(matches)

    def export_parquet(self, path: str | Path) -> int:
        """One row per turn, with its match's fields; returns the number of rows."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        by_index = {m["index"]: m for m in self.matches()}
        rows = []
        for turn in self.turns():
            match = by_index[turn["match_idx"]]
            rows.append({
                **turn,
                "action_logprobs": json.dumps(turn["action_logprobs"]) if turn["action_logprobs"] else None,
                "game": match["game"], "match_seed": match["seed"], "seats": match["seats"],
                "returns": match["returns"], "forfeit_by": match["forfeit_by"],
            })
        pq.write_table(pa.Table.from_pylist(rows), path)
        return len(rows)

    def close(self) -> None:
        self.db.close()


def match_record(result: MatchResult) -> dict[str, Any]:
    """A finished match as `RunStore.matches()` returns it, so results read the same
    from memory and from a run directory."""
    return {
        "index": result.index, "game": result.game, "seed": result.seed, "seats": list(result.seats),
        "returns": list(result.returns), "forfeit_by": result.forfeit_by,
        "invalid": result.invalid_counts(), "n_turns": len(result.turns), "wall_s": result.wall_s,
    }


def _turn_row(match_index: int, seq: int, t: Turn) -> tuple:
    return (
        match_index, seq, t.index, t.attempt, t.player, t.agent, t.view, t.prompt,
        t.completion, json.dumps(t.prompt_token_ids), json.dumps(t.token_ids), json.dumps(t.logprobs),
        json.dumps({str(k): v for k, v in t.action_logprobs.items()}) if t.action_logprobs else None,
        t.action, t.action_name, int(t.valid), int(t.forced), t.reason, t.message, t.latency_s,
    )
