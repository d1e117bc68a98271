"""`[tenants.NAME]` in the config file: key ids, never keys; mistakes refused by name.

The pure rules (key id, group parsing, key -> tenant id), then `wirebridge serve` refusing a
bad table before it listens and warning about a key id that matches no key.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from wirebridge.errors import ConfigError
from wirebridge.responses.tenants import (
    key_id,
    parse_tenant_groups,
    tenant_ids,
    tenant_warnings,
)

from .test_server_cli import run_cli, serve

pytestmark = pytest.mark.anyio


def test_a_key_id_is_the_start_of_the_keys_sha256() -> None:
    assert key_id("sk-alice") == hashlib.sha256(b"sk-alice").hexdigest()[:32]


def test_keys_map_to_their_group_or_to_themselves() -> None:
    groups = parse_tenant_groups(
        {"tenants": {"team": {"key_ids": [hashlib.sha256(b"a").hexdigest()]}}}  # 64 digits: ok
    )
    assert tenant_ids(["a", "b"], groups) == {"a": "group:team", "b": f"key:{key_id('b')}"}
    assert tenant_warnings(["b"], groups) == [
        f"tenants.team: key id {key_id('a')} matches no key in WIREBRIDGE_API_KEYS"
    ]
    assert "no effect" in tenant_warnings([], groups)[0]


@pytest.mark.parametrize(
    ("tables", "complaint"),
    [
        ({"team": {"key_ids": ["sk-alice"]}}, "is not a key id"),
        ({"team": {"key_ids": []}}, "needs key_ids"),
        ({"team": {}}, "needs key_ids"),
        ({"bad name": {"key_ids": ["a" * 32]}}, "a name is"),
        ({"one": {"key_ids": ["a" * 32]}, "two": {"key_ids": ["A" * 32]}}, "in both"),
    ],
)
def test_mistakes_are_refused_naming_the_table(tables: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        parse_tenant_groups({"tenants": tables})


async def test_serve_refuses_a_bad_tenants_table_and_warns_of_an_unmatched_id(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[tenants.team]\nkey_ids = ["sk-live-secret"]\n')
    code, stderr = await run_cli("--config", str(bad))
    assert code == 1 and "tenants.team.key_ids[0] is not a key id" in stderr
    assert "sk-live-secret" not in stderr  # a key pasted by mistake is not echoed
    good = tmp_path / "good.toml"
    good.write_text(f'[tenants.team]\nkey_ids = ["{key_id("nobody")}"]\n')
    env = {"WIREBRIDGE_API_KEYS": "sk-alice"}
    async with serve("--config", str(good), "--no-store", env=env) as server:
        pass
    assert f"key id {key_id('nobody')} matches no key" in server.stderr
    assert "sk-alice" not in server.stderr
