"""What the runs page says of each run, read through the store and kept until the
store changes (a finished run is read once, not at every visit)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sparring.dashboard.runs import StoreStamp, disk_usage
from sparring.errors import SparringError
from sparring.store import RunStore

T = TypeVar("T")
RECENT_S = 60.0  # a store written within this long belongs to a running run


@contextmanager
def reading(run_dir: Path) -> Iterator[RunStore]:
    """The run's store opened read-only for one page: opened anew for each, so a
    page shows what a running run has written up to now."""
    store = RunStore(run_dir, read_only=True)
    try:
        yield store
    finally:
        store.close()


@dataclass(frozen=True)
class RunSummary:
    """One row of the runs page."""

    name: str  # the run's path under the root, as URLs name it
    kind: str | None  # play, tournament, train, mirror, population, evolve, benchmark
    games: tuple[str, ...]
    agents: tuple[str, ...]  # every agent that held a seat, in order of first appearance
    matches: int
    done: int | None  # units of work done (steps, generations, matches...) and planned
    planned: int | None
    unit: str  # what `done` counts
    size: int  # bytes on disk, the whole run directory
    modified: float  # when the store last changed
    error: str | None = None  # why the store could not be read

    def status(self, now: float | None = None) -> str:
        """running (written within RECENT_S), finished (all its planned work done),
        interrupted (stopped short of its plan), stopped (no plan to tell by), or
        unreadable."""
        if self.error is not None:
            return "unreadable"
        if (now if now is not None else time.time()) - self.modified < RECENT_S:
            return "running"
        if self.done is None or self.planned is None:
            return "stopped"
        return "finished" if self.done >= self.planned else "interrupted"

    @property
    def progress(self) -> str:
        if self.done is None:
            return ""
        return f"{self.done} of {self.planned} {self.unit}" if self.planned is not None else f"{self.done} {self.unit}"


def read_summary(name: str, run_dir: Path, stamp: StoreStamp) -> RunSummary:
    """The summary of one run; a store that cannot be read gives a row that says why."""
    try:
        with reading(run_dir) as store:
            kind = store.kind()
            matches, games, agents = store.match_overview()
            done, planned, unit = work_done(store, kind, matches)
    except SparringError as exc:  # a damaged store, or one of another schema: the row says why
        return RunSummary(name, None, (), (), 0, None, None, "", disk_usage(run_dir), stamp.modified,
                          error=str(exc))
    return RunSummary(
        name=name, kind=kind, games=games, agents=agents, matches=matches,
        done=done, planned=planned, unit=unit, size=disk_usage(run_dir), modified=stamp.modified)


def work_done(store: RunStore, kind: str | None, matches: int) -> tuple[int | None, int | None, str]:
    """(done, planned, unit) of the run's own plan, from its stored settings: a
    training run's steps, an evolution's generations, a play run's matches..."""
    if kind == "train":
        steps = store.train_steps()
        return (steps[-1].get("step", len(steps)) if steps else 0), _setting(store, "train_config", "steps"), "steps"
    if kind == "mirror":
        return len(store.train_steps()), _setting(store, "mirror_config", "iterations"), "iterations"
    if kind == "population":
        iterations = _setting(store, "population_config", "iterations")
        # the first solve (iteration 0) has the first member alone; the run ends after `iterations` more
        return len(store.population_iterations()), None if iterations is None else iterations + 1, "solves"
    if kind == "evolve":
        planned = _setting(store, "evolve_config", "generations")
        if store.get_meta("evolve_open") is not None and planned is not None:
            planned = max(planned, len(store.generations()) + 1)  # a generation was left half-played
        return len(store.generations()), planned, "generations"
    if kind == "tournament":
        from sparring.arena.tournament import planned_matches

        plan = store.get_meta("tournament")
        return matches, planned_matches(plan) if isinstance(plan, dict) else None, "matches"
    if kind == "play":
        return matches, _setting(store, "config", "games"), "matches"
    return (matches, None, "matches") if matches else (None, None, "")


def _setting(store: RunStore, key: str, field: str) -> int | None:
    config = store.get_meta(key)
    value = config.get(field) if isinstance(config, dict) else None
    return value if isinstance(value, int) else None


class Summaries:
    """Summaries kept per run until its store's stamp changes."""

    def __init__(self):
        self.kept = KeptUntilChanged()

    def of(self, name: str, run_dir: Path) -> RunSummary:
        try:
            stamp = StoreStamp.of(run_dir)
        except OSError as exc:  # removed since the root was walked
            return RunSummary(name, None, (), (), 0, None, None, "", 0, 0.0, error=f"{run_dir}: {exc.strerror}")
        return self.kept.get(run_dir, stamp, lambda: read_summary(name, run_dir, stamp))


class KeptUntilChanged:
    """What was read from a run's store, kept until the store's stamp changes: a
    finished run is read once, not at every visit."""

    def __init__(self):
        self._kept: dict[Path, tuple[StoreStamp, Any]] = {}
        self._lock = threading.Lock()

    def get(self, run_dir: Path, stamp: StoreStamp, read: Callable[[], T]) -> T:
        with self._lock:
            kept = self._kept.get(run_dir)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        value = read()
        with self._lock:
            self._kept[run_dir] = (stamp, value)
        return value
