"""The runs under the dashboard's root: finding them, naming them in URLs, and
keeping every URL inside the root.

A URL names a run by its path relative to the root. A path that resolves outside
the root (`..`, an absolute path, a symbolic link that leads out) or to a
directory without a store is refused, the same as one that does not exist, so a
page can never read a file the user did not put under the root.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sparring.errors import SparringError
from sparring.store import DB_NAME

WAL = DB_NAME + "-wal"


class UnknownRun(LookupError):
    """A URL's run path names no run under the root."""


@dataclass(frozen=True)
class RunsRoot:
    """Where runs are looked for. `base` is what URL paths are relative to and `scope`
    what they may reach: the same directory, or, when the user points the dashboard
    at one run directory, its parent and the run itself."""

    base: Path
    scope: Path

    @classmethod
    def at(cls, directory: str | Path) -> RunsRoot:
        path = Path(directory).expanduser()
        if not path.is_dir():
            what = "is not a directory" if path.exists() else "does not exist"
            raise SparringError(f"{directory} {what}: give the directory your runs are in, e.g. "
                                "`sparring dashboard runs/`")
        path = path.resolve()
        if (path / DB_NAME).is_file():
            return cls(base=path.parent, scope=path)
        return cls(base=path, scope=path)

    def find(self) -> list[str]:
        """Every run under the root (a directory holding a store), as URL paths in
        path order. Symbolic links are not followed: a link could lead out of the
        root, and a link to a run inside it names a run listed anyway."""
        found = []
        for folder, subfolders, files in os.walk(self.scope):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            if DB_NAME in files and not os.path.islink(os.path.join(folder, DB_NAME)):
                found.append(Path(folder).relative_to(self.base).as_posix())
        return found

    def resolve(self, name: str) -> Path:
        """The run directory that the URL path `name` names, or UnknownRun."""
        if not name or name.startswith(("/", "\\")) or "\x00" in name:
            raise UnknownRun(name)
        candidate = (self.base / name).resolve()
        store = candidate / DB_NAME
        if not candidate.is_relative_to(self.scope) or not store.is_file() or store.is_symlink():
            raise UnknownRun(name)
        return candidate

    def name_of(self, run_dir: Path) -> str:
        return run_dir.relative_to(self.base).as_posix()


def run_url(name: str, *rest: str | int) -> str:
    """The URL of a run's page (or of a page below it: `run_url(name, "match", 3)`),
    each path segment quoted."""
    parts = [quote(part, safe="") for part in name.split("/")] + [quote(str(r), safe="") for r in rest]
    return "/run/" + "/".join(parts)


@dataclass(frozen=True)
class StoreStamp:
    """How big a store is and when it last changed: what decides whether what was
    read from it is still current, and whether its run is still running."""

    size: int
    modified: float  # newest change of the store or of a write-ahead log that holds writes

    @classmethod
    def of(cls, run_dir: Path) -> StoreStamp:
        """A reader on a store whose writer has closed leaves an empty write-ahead log
        behind (SQLite makes one to read a WAL-mode file), so an empty log is not a
        sign of writing; a log with content is."""
        store = (run_dir / DB_NAME).stat()
        size, modified = store.st_size, store.st_mtime
        try:
            wal = (run_dir / WAL).stat()
        except FileNotFoundError:
            return cls(size, modified)
        if wal.st_size > 0:
            size, modified = size + wal.st_size, max(modified, wal.st_mtime)
        return cls(size, modified)


def disk_usage(run_dir: Path) -> int:
    """Bytes the run directory takes on disk (store, checkpoints, reports), as `du`
    counts them; symbolic links are not followed."""
    total = 0
    for folder, _, files in os.walk(run_dir):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:  # a file removed while we walked (a checkpoint being replaced)
                continue
    return total
