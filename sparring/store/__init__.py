"""The run store: one SQLite file per run directory, and the only package that
speaks SQL. It owns every table: matches and their turns, a training run's steps,
evaluations and exploitability checks, a population's members, meta-game and
solves, an evolution's playbooks, promotions and generations, and the run's
metadata (`schema.py` holds the tables and their migrations; `run_store.py` reads
and writes them as records).

Every match is written in one transaction when it ends, so an interrupted run keeps
every finished match and can be continued; a half-played match is never stored.
The schema carries a version: an older store is migrated when opened, a newer one
is refused with the version it has. Reading never creates tables.
"""

from sparring.store.run_store import KIND_KEYS, RunStore, new_run_dir
from sparring.store.schema import DB_NAME, SCHEMA_VERSION

__all__ = ["DB_NAME", "KIND_KEYS", "SCHEMA_VERSION", "RunStore", "new_run_dir"]
