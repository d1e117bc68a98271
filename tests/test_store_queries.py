"""The store's SQL, written once with `$n` placeholders, and its conversion for SQLite."""

from __future__ import annotations

import re
import sqlite3

import pytest

from wirebridge.store import queries
from wirebridge.store.queries import sqlite_placeholders
from wirebridge.store.records import COLUMNS
from wirebridge.store.schema import MIGRATIONS, SCHEMA_VERSION_TABLE

ALL = {
    "SELECT_RESPONSE": queries.SELECT_RESPONSE,
    "SELECT_INPUT_ITEMS": queries.SELECT_INPUT_ITEMS,
    "DELETE_RESPONSE": queries.DELETE_RESPONSE,
    "INSERT_RESPONSE": queries.INSERT_RESPONSE,
    "SELECT_CHAIN": queries.SELECT_CHAIN,
    "CURRENT_VERSION": queries.CURRENT_VERSION,
    "RECORD_MIGRATION": queries.RECORD_MIGRATION,
    "expire_batch()": queries.expire_batch(),
}


@pytest.mark.parametrize(
    ("sql", "converted"),
    [
        ("SELECT 1", "SELECT 1"),
        ("WHERE id = $1 AND t > $2", "WHERE id = ?1 AND t > ?2"),
        ("a > $2 OR b > $2", "a > ?2 OR b > ?2"),  # a reused parameter keeps its number
        ("VALUES ($9, $10, $11)", "VALUES (?9, ?10, ?11)"),
        ("WHERE s = '$1' AND t = $1", "WHERE s = '$1' AND t = ?1"),
        ("WHERE s = 'it''s $1' AND t = $1", "WHERE s = 'it''s $1' AND t = ?1"),
        ('SELECT "$1" FROM t WHERE x = $1', 'SELECT "$1" FROM t WHERE x = ?1'),
    ],
)
def test_sqlite_placeholders(sql: str, converted: str) -> None:
    assert sqlite_placeholders(sql) == converted


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_query_converts_number_for_number(name: str) -> None:
    sql = ALL[name]
    converted = sqlite_placeholders(sql)
    assert "$" not in converted
    assert re.findall(r"\$(\d+)", sql) == re.findall(r"\?(\d+)", converted)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_converted_query_prepares_on_sqlite(name: str) -> None:
    """SQLite compiles each one (EXPLAIN: nothing runs) against the real schema, and the
    parameter count it expects matches the highest `$n`."""
    sql = ALL[name]
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(SCHEMA_VERSION_TABLE)
        for migration in MIGRATIONS:
            for statement in migration.statements:
                conn.execute(statement)
        count = max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)
        conn.execute(f"EXPLAIN {sqlite_placeholders(sql)}", (None,) * count)
    finally:
        conn.close()


def test_insert_binds_every_column_in_order() -> None:
    assert re.findall(r"\$(\d+)", queries.INSERT_RESPONSE) == [
        str(i) for i in range(1, len(COLUMNS) + 1)
    ]


def test_expire_batch_takes_the_row_lock_as_a_parameter() -> None:
    assert queries.expire_batch().endswith("LIMIT $2)")
    locked = queries.expire_batch("FOR UPDATE SKIP LOCKED")
    assert locked.endswith("LIMIT $2 FOR UPDATE SKIP LOCKED)")
