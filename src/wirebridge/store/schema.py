"""The database schema: one ordered list of migrations, applied alike by both backends.

The DDL is SQL that SQLite and PostgreSQL both accept, so one list keeps the two schemas from
drifting apart. Each database records applied migrations in `schema_version`; opening a store
applies, in one transaction under the backend's migration lock, every migration newer than the
highest recorded, so processes starting together apply each exactly once. A released migration
is never edited: a change is a new entry at the end.

Times are unix seconds in integer columns; JSON is TEXT (PostgreSQL `jsonb` refuses `\\u0000`,
which model output may contain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import SchemaVersionError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


SCHEMA_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " description TEXT NOT NULL,"
    " applied_at BIGINT NOT NULL)"
)

_RESPONSES_COLUMNS = """
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    model TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'incomplete')),
    previous_response_id TEXT,
    input_items TEXT NOT NULL,
    output_items TEXT NOT NULL,
    usage TEXT,
    response TEXT NOT NULL,
    expires_at BIGINT
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "responses table with expiry index",
        (
            f"CREATE TABLE responses ({_RESPONSES_COLUMNS})",
            "CREATE INDEX responses_expires_at ON responses (expires_at)"
            " WHERE expires_at IS NOT NULL",
        ),
    ),
    Migration(
        2,
        "tenant column; item id index for item_reference",
        (
            # NULL: stored before tenants existed, or by a bridge without keys (docs/store.md).
            "ALTER TABLE responses ADD COLUMN tenant TEXT",
            # Which responses hold an item with this id (input or output). Rows go with their
            # response: ON DELETE CASCADE (SQLite enforces it with `PRAGMA foreign_keys`).
            "CREATE TABLE response_items ("
            " item_id TEXT NOT NULL,"
            " response_id TEXT NOT NULL REFERENCES responses (id) ON DELETE CASCADE,"
            " PRIMARY KEY (item_id, response_id))",
            "CREATE INDEX response_items_response ON response_items (response_id)",
        ),
    ),
    Migration(
        3,
        "background runs and their event logs",
        (
            # One row per background run (store/runs.py): status, live Response snapshot, the
            # bridge executing it and its lease, a cancel flag that bridge polls.
            "CREATE TABLE runs ("
            " id TEXT PRIMARY KEY,"
            " tenant TEXT,"
            " status TEXT NOT NULL,"
            " response TEXT NOT NULL,"
            " owner TEXT NOT NULL,"
            " lease_until BIGINT NOT NULL,"
            " cancel_requested INTEGER NOT NULL DEFAULT 0,"
            " last_seq INTEGER NOT NULL DEFAULT -1,"
            " created_at BIGINT NOT NULL,"
            " ended_at BIGINT,"
            " expires_at BIGINT)",
            "CREATE INDEX runs_status ON runs (status, lease_until)",
            "CREATE TABLE run_events ("
            " response_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,"
            " seq INTEGER NOT NULL,"
            " data TEXT NOT NULL,"
            " PRIMARY KEY (response_id, seq))",
        ),
    ),
    Migration(
        4,
        "index on previous_response_id: the responses that continued one",
        (
            # A client that chains every step of a turn to the turn's first response (the AI
            # SDK's previousResponseId) sends back calls whose reasoning lives in a sibling
            # step; history.py finds it among the children of previous_response_id.
            "CREATE INDEX responses_previous ON responses (previous_response_id)"
            " WHERE previous_response_id IS NOT NULL",
        ),
    ),
    Migration(
        5,
        "conversations and their items",
        (
            # The Conversations API (store/conversations.py): tenant and expiry as responses;
            # next_position is where the next item goes, bumped by each append under the row's
            # write lock, which is what orders concurrent appends.
            "CREATE TABLE conversations ("
            " id TEXT PRIMARY KEY,"
            " tenant TEXT,"
            " created_at BIGINT NOT NULL,"
            " metadata TEXT NOT NULL,"
            " next_position BIGINT NOT NULL DEFAULT 0,"
            " expires_at BIGINT)",
            "CREATE INDEX conversations_expires_at ON conversations (expires_at)"
            " WHERE expires_at IS NOT NULL",
            "CREATE TABLE conversation_items ("
            " conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,"
            " position BIGINT NOT NULL,"
            " item_id TEXT NOT NULL,"
            " item TEXT NOT NULL,"
            " PRIMARY KEY (conversation_id, position))",
            # item lookups: retrieve/delete one item, and item_reference across conversations
            "CREATE INDEX conversation_items_item ON conversation_items (item_id)",
        ),
    ),
)


def pending_migrations(current: int, migrations: Sequence[Migration]) -> list[Migration]:
    """The migrations to apply on a database at version `current` (0 when new), in order."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1..n in order, got {versions}")
    if current > len(migrations):
        raise SchemaVersionError(
            f"the database schema is at version {current}, but this wirebridge knows versions "
            f"up to {len(migrations)}; upgrade wirebridge (schemas are never downgraded)"
        )
    return list(migrations[current:])
