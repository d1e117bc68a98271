"""Every statement the backends run, written once in PostgreSQL's `$n` placeholder style.

SQLite runs the same text after `sqlite_placeholders` turns `$n` into its `?n` (same number, so
a parameter used twice is still passed once), which keeps the two backends' queries identical
rather than near copies. Where the backends do differ, the difference is a parameter of the
query (`expire_batch`'s row lock).
"""

from __future__ import annotations

import re

from .records import COLUMNS

# A row is live until its `expires_at`: readers never see it after that, swept or not.
_LIVE = "(expires_at IS NULL OR expires_at > $2)"
# A row is visible to tenant $3 when it is theirs or no one's (NULL); a NULL $3 (a bridge
# without keys) sees only no one's rows, since `tenant = NULL` is never true.
_VISIBLE = "(tenant IS NULL OR tenant = $3)"

# $1 id, $2 now, $3 tenant
SELECT_RESPONSE = (
    f"SELECT {', '.join(COLUMNS)} FROM responses WHERE id = $1 AND {_LIVE} AND {_VISIBLE}"
)
SELECT_INPUT_ITEMS = f"SELECT input_items FROM responses WHERE id = $1 AND {_LIVE} AND {_VISIBLE}"
DELETE_RESPONSE = f"DELETE FROM responses WHERE id = $1 AND {_LIVE} AND {_VISIBLE}"

# $1 item id, $2 now, $3 tenant: the newest live, visible response holding an item with that id
SELECT_ITEM_HOLDER = """
SELECT r.input_items, r.output_items
  FROM response_items AS i JOIN responses AS r ON r.id = i.response_id
 WHERE i.item_id = $1 AND (r.expires_at IS NULL OR r.expires_at > $2)
   AND (r.tenant IS NULL OR r.tenant = $3)
 ORDER BY r.created_at DESC
 LIMIT 1
"""
# $1 response id, $2 now, $3 tenant, $4 limit: the output items of the live, visible responses
# that continued $1 (its children), newest first (index `responses_previous`)
SELECT_CHILD_OUTPUTS = f"""
SELECT output_items FROM responses
 WHERE previous_response_id = $1 AND {_LIVE} AND {_VISIBLE}
 ORDER BY created_at DESC
 LIMIT $4
"""
# $1 item id, $2 response id
INSERT_ITEM_ID = (
    "INSERT INTO response_items (item_id, response_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
)

# $1..$n: the columns of `records.COLUMNS`, in order
INSERT_RESPONSE = (
    f"INSERT INTO responses ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})"
)

# $1 id, $2 now, $3 tenant, $4 max depth: the live rows visible to $3 from $1 towards the
# root, newest first (another tenant's row is a missing link, as a deleted one is)
SELECT_CHAIN = f"""
WITH RECURSIVE chain(id, prev, depth) AS (
    SELECT id, previous_response_id, 0 FROM responses WHERE id = $1 AND {_LIVE} AND {_VISIBLE}
    UNION ALL
    SELECT r.id, r.previous_response_id, chain.depth + 1
      FROM responses AS r JOIN chain ON r.id = chain.prev
     WHERE chain.depth < $4 AND (r.expires_at IS NULL OR r.expires_at > $2)
       AND (r.tenant IS NULL OR r.tenant = $3)
)
SELECT r.id, r.previous_response_id, r.input_items, r.output_items
  FROM chain JOIN responses AS r ON r.id = chain.id
 ORDER BY chain.depth
"""

# The migration bookkeeping; RECORD_MIGRATION: $1 version, $2 description, $3 applied_at
CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_version"
RECORD_MIGRATION = (
    "INSERT INTO schema_version (version, description, applied_at) VALUES ($1, $2, $3)"
)


def expire_batch(row_lock: str = "") -> str:
    """Delete at most $2 rows expired at $1 (unix seconds).

    `row_lock` ends the inner SELECT: PostgreSQL passes `FOR UPDATE SKIP LOCKED` so concurrent
    sweeps skip each other's rows; SQLite, with one writer at a time, passes nothing.
    """
    lock = f" {row_lock}" if row_lock else ""
    return (
        "DELETE FROM responses WHERE id IN (SELECT id FROM responses"
        f" WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2{lock})"
    )


_PLACEHOLDER_OR_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\d+)")


def sqlite_placeholders(sql: str) -> str:
    """`sql` with each `$n` placeholder written `?n`, SQLite's numbered form; text inside
    quoted literals or identifiers is left as it is."""
    return _PLACEHOLDER_OR_QUOTED.sub(
        lambda m: m.group(0) if m.group(1) is None else f"?{m.group(1)}", sql
    )
