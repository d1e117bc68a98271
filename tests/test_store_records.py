"""The store's pure rules, without a database: paging, chain assembly, JSON text, URLs, the
migration plan. The backends share these, so they are pinned here exhaustively."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirebridge.errors import ConfigError
from wirebridge.redact import redact_dsn
from wirebridge.store import (
    InvalidParameterError,
    PreviousResponseNotFoundError,
    SchemaVersionError,
    StoredResponse,
    parse_store_url,
)
from wirebridge.store.records import (
    ChainLink,
    assemble_chain,
    decode_json,
    encode_json,
    paginate,
    prepare_for_save,
    with_item_ids,
)
from wirebridge.store.schema import MIGRATIONS, Migration, pending_migrations

# ---------------------------------------------------------------------------------------------
# Paging


def items(n: int) -> list[dict[str, Any]]:
    return [{"id": f"it_{i}", "type": "message"} for i in range(n)]


@given(n=st.integers(0, 60), limit=st.integers(1, 100), order=st.sampled_from(["asc", "desc"]))
def test_following_last_id_pages_through_every_item_exactly_once(
    n: int, limit: int, order: str
) -> None:
    stored = items(n)
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        page = paginate(stored, after=after, limit=limit, order=order)
        assert len(page.data) <= limit
        assert page.first_id == (page.data[0]["id"] if page.data else None)
        assert page.last_id == (page.data[-1]["id"] if page.data else None)
        seen += page.data
        if not page.has_more:
            break
        assert len(page.data) == limit  # only a full page can have more after it
        after = page.last_id
    assert seen == (stored if order == "asc" else stored[::-1])


def test_defaults_are_newest_first_twenty() -> None:
    page = paginate(items(30))
    assert [i["id"] for i in page.data] == [f"it_{i}" for i in range(29, 9, -1)]
    assert page.has_more


def test_cursor_at_the_last_item_gives_an_empty_final_page() -> None:
    page = paginate(items(3), after="it_2", order="asc")
    assert (page.data, page.first_id, page.last_id, page.has_more) == ((), None, None, False)


@pytest.mark.parametrize("limit", [0, -1, 101, True, 2.5])
def test_limit_outside_one_to_hundred_names_limit(limit: Any) -> None:
    with pytest.raises(InvalidParameterError, match="limit") as info:
        paginate(items(3), limit=limit)
    assert info.value.param == "limit"


def test_unknown_cursor_names_after() -> None:
    with pytest.raises(InvalidParameterError) as info:
        paginate(items(3), after="it_9")
    assert info.value.param == "after"
    assert "it_9" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Chain assembly


def link(rid: str, prev: str | None) -> ChainLink:
    return ChainLink(
        rid, prev, json.dumps([{"id": f"in_{rid}"}]), json.dumps([{"id": f"out_{rid}"}])
    )


def test_chain_assembles_oldest_first_inputs_before_outputs() -> None:
    links = [link("c", "b"), link("b", "a"), link("a", None)]
    history = assemble_chain("c", links, max_depth=10)
    assert [i["id"] for i in history] == ["in_a", "out_a", "in_b", "out_b", "in_c", "out_c"]


def test_walk_that_stops_on_a_row_with_a_previous_id_names_the_missing_link() -> None:
    with pytest.raises(PreviousResponseNotFoundError) as info:
        assemble_chain("c", [link("c", "b"), link("b", "a")], max_depth=10)
    assert info.value.missing_id == "a"
    assert "'a'" in str(info.value) and "'c'" in str(info.value)


def test_no_rows_means_the_previous_response_itself_is_unknown() -> None:
    with pytest.raises(PreviousResponseNotFoundError, match=r"^Previous response with id 'x' not"):
        assemble_chain("x", [], max_depth=10)


def test_walk_cut_at_max_depth_is_too_long() -> None:
    links = [link(str(i), str(i + 1)) for i in range(4)]
    with pytest.raises(PreviousResponseNotFoundError, match="longer than 3"):
        assemble_chain("0", links, max_depth=3)


def test_rows_that_do_not_follow_each_other_are_refused() -> None:
    with pytest.raises(PreviousResponseNotFoundError):
        assemble_chain("c", [link("c", "b"), link("z", None)], max_depth=10)


# ---------------------------------------------------------------------------------------------
# Preparing a record


def test_prepare_fills_ttl_and_input_ids_only() -> None:
    rec = StoredResponse(
        id="resp_1",
        created_at=1000,
        model="m",
        status="completed",
        previous_response_id=None,
        input_items=({"type": "function_call_output", "call_id": "c", "output": "x"},),
        output_items=({"type": "message"},),
        usage=None,
        response={},
    )
    prepared = prepare_for_save(rec, ttl_seconds=60, new_id=lambda t: f"new_{t}")
    assert prepared.expires_at == 1060
    assert prepared.input_items == (
        {
            "id": "new_function_call_output",
            "type": "function_call_output",
            "call_id": "c",
            "output": "x",
        },
    )
    assert prepared.output_items == ({"type": "message"},)
    assert prepare_for_save(rec, ttl_seconds=None).expires_at is None
    explicit = prepare_for_save(StoredResponse(**{**_fields(rec), "expires_at": 5}), ttl_seconds=60)
    assert explicit.expires_at == 5


def _fields(rec: StoredResponse) -> dict[str, Any]:
    return {name: getattr(rec, name) for name in StoredResponse.__slots__}


def test_generated_item_ids_use_the_openai_prefixes_and_differ() -> None:
    first, second, third = with_item_ids(
        [{"type": "message"}, {"type": "message"}, {"type": "something_new"}]
    )
    assert first["id"].startswith("msg_") and second["id"].startswith("msg_")
    assert first["id"] != second["id"]
    assert third["id"].startswith("item_")


# ---------------------------------------------------------------------------------------------
# JSON text

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.text(st.characters(codec=None, categories=None)),  # surrogates and NUL included
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_json_text_round_trips_and_is_valid_utf8(value: Any) -> None:
    text = encode_json(value)
    text.encode("utf-8")  # storable as TEXT in SQLite and PostgreSQL
    assert "\x00" not in text  # PostgreSQL text cannot hold NUL
    assert decode_json(text) == value


def test_non_ascii_text_stays_readable() -> None:
    assert encode_json({"t": "héllo 😀"}) == '{"t":"héllo 😀"}'


# ---------------------------------------------------------------------------------------------
# URLs


def test_no_url_means_responses_db_under_wirebridge_home(tmp_path: Path) -> None:
    loc = parse_store_url(None, {"WIREBRIDGE_HOME": str(tmp_path / "home")})
    assert (loc.backend, loc.target) == ("sqlite", str(tmp_path / "home" / "responses.db"))


def test_wirebridge_home_defaults_to_dot_wirebridge() -> None:
    loc = parse_store_url(None, {})
    assert loc.target == str(Path("~/.wirebridge/responses.db").expanduser())


@pytest.mark.parametrize(
    ("url", "backend", "target"),
    [
        ("sqlite:///var/lib/wb/r.db", "sqlite", "/var/lib/wb/r.db"),
        ("sqlite://relative/r.db", "sqlite", "relative/r.db"),
        ("sqlite://:memory:", "sqlite", ":memory:"),
        ("/plain/path.db", "sqlite", "/plain/path.db"),
        (
            "postgresql://u:p@db.internal:5432/wb",
            "postgresql",
            "postgresql://u:p@db.internal:5432/wb",
        ),
        ("postgres://u@127.0.0.1/wb", "postgresql", "postgres://u@127.0.0.1/wb"),
        ("PostgreSQL://h/wb", "postgresql", "PostgreSQL://h/wb"),
    ],
)
def test_url_picks_the_backend(url: str, backend: str, target: str) -> None:
    loc = parse_store_url(url, {})
    assert (loc.backend, loc.target) == (backend, target)


def test_unknown_scheme_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError, match="mysql") as info:
        parse_store_url("mysql://root:hunter2@h/db", {})
    assert "hunter2" not in str(info.value)


def test_location_prints_without_the_password() -> None:
    assert str(parse_store_url("postgresql://u:hunter2@h/db", {})) == "postgresql://u:***@h/db"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:a/b@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u@h/db?password=pw&sslmode=require",
            "postgresql://u@h/db?password=***&sslmode=require",
        ),
        ("postgresql://h/db", "postgresql://h/db"),
    ],
)
def test_redact_dsn_hides_every_password_form(url: str, shown: str) -> None:
    assert redact_dsn(url) == shown


# ---------------------------------------------------------------------------------------------
# Migration plan


def test_released_migrations_are_numbered_from_one() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_pending_migrations_are_those_after_the_current_version() -> None:
    ms = tuple(Migration(v, f"m{v}", ()) for v in (1, 2, 3))
    assert pending_migrations(0, ms) == list(ms)
    assert pending_migrations(2, ms) == [ms[2]]
    assert pending_migrations(3, ms) == []
    with pytest.raises(SchemaVersionError, match="version 4"):
        pending_migrations(4, ms)
    with pytest.raises(ValueError, match=r"1\.\.n"):
        pending_migrations(0, (ms[0], ms[2]))
