# Copyright (c) golem.vm contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PostgreSQL state's schema, its versions, and the advisory-lock keys golem.vm uses.

The collection creates and migrates its own tables; nobody runs SQL by hand. Each
migration is a numbered list of statements; ``golem_vm_schema`` records which ran, when
and by whom. ``ensure_schema`` applies the missing ones in one transaction under a
transaction-level advisory lock, so when 40 forks (or 40 controllers) start against an
empty database at once, one creates the tables and the other 39 wait a moment, then find
them there. Without the lock, concurrent ``CREATE TABLE IF NOT EXISTS`` can still fail
with a unique violation in the catalog. PostgreSQL's DDL is transactional, so a migration
that fails leaves nothing half-done.

Tables are unqualified: they live in the first schema of the role's ``search_path``
(``public`` by default; ``?options=-csearch_path%3Dteam_a`` in the URL picks another).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SCHEMA_TABLE = "golem_vm_schema"


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


# Upstream's vms columns, so rows move between SQLite and PostgreSQL unchanged:
# - config stays TEXT, not jsonb: jsonb would reorder keys and reject a row whose JSON is
#   broken, and the copy tool promises rows byte for byte, broken ones included;
# - created_at stays TEXT in SQLite's CURRENT_TIMESTAMP format (UTC, "YYYY-MM-DD HH:MM:SS"),
#   for the same reason;
# - name sorts bytewise (COLLATE "C") whatever the database's collation, as SQLite sorts it.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "vms table with upstream's columns", (
        'CREATE TABLE vms (name TEXT COLLATE "C" PRIMARY KEY, provider_ip TEXT NOT NULL, vm_id TEXT NOT NULL, '
        "config TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'running', "
        "created_at TEXT DEFAULT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'))",
    )),
)
LATEST = MIGRATIONS[-1].version

CREATE_SCHEMA_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), applied_by TEXT NOT NULL DEFAULT current_user)"
)


def advisory_key(text: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``text`` (pg_advisory_lock takes a bigint).

    Hashed in Python, not with hashtext(), whose values PostgreSQL does not promise to keep.
    """
    digest = hashlib.blake2b(text.encode("utf-8", errors="surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


MIGRATION_LOCK_KEY = advisory_key("golem.vm:state-schema-migration")


def name_lock_key(name: str) -> int:
    # Two names sharing a key (one chance in 2**64) only make their creates take turns.
    return advisory_key("golem.vm:vm-name:" + name)


class SchemaTooNew(Exception):
    """The database was migrated by a newer golem.vm than this one."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(f"schema version {found}, newer than {known}")
        self.found = found
        self.known = known


def current_version(conn: Any) -> int | None:
    """The newest applied migration; None when the version table is not there (nothing created yet)."""
    present = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (SCHEMA_TABLE,)).fetchone()[0]
    if not present:
        return None
    return int(conn.execute(f"SELECT COALESCE(max(version), 0) FROM {SCHEMA_TABLE}").fetchone()[0])


def ensure_schema(conn: Any, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the schema up to the last of ``migrations``; return that version.

    ``conn`` is an autocommit psycopg connection. Raises SchemaTooNew rather than write to
    tables whose shape this code does not know.
    """
    latest = migrations[-1].version if migrations else 0
    found = current_version(conn)
    if found == latest:
        return found  # the usual case: one cheap query, no lock
    if found is not None and found > latest:
        raise SchemaTooNew(found, latest)
    with conn.transaction():
        # Released at commit or rollback, so a crashed migrator never leaves it held.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(CREATE_SCHEMA_TABLE)
        found = int(conn.execute(f"SELECT COALESCE(max(version), 0) FROM {SCHEMA_TABLE}").fetchone()[0])
        if found > latest:
            raise SchemaTooNew(found, latest)
        for migration in migrations:
            if migration.version <= found:
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {SCHEMA_TABLE} (version, description) VALUES (%s, %s)",
                (migration.version, migration.description),
            )
    return latest
