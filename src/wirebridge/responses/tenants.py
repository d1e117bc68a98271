"""Who owns a stored response: a tenant id derived from the caller's API key, never the key.

A tenant is one key of `WIREBRIDGE_API_KEYS`, or a named group of keys in the config file:

    [tenants.acme]
    key_ids = ["9f86d081884c7d659a2feaa0c55ad015", "..."]

where a key id is the first 32 hex digits of the key's SHA-256 (`printf %s "$KEY" | sha256sum`).
The id stored with a response is `key:<key id>` or `group:<name>`: a digest cannot be turned
back into a random key, and the config file holds no secret. It is a pure function of the keys
and the config, so every bridge given the same ones agrees on every tenant (several bridges on
one PostgreSQL). The gate puts the caller's tenant id in the ASGI scope's state; handlers read
it with `scope_tenant`.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from starlette.types import Scope

from ..errors import ConfigError

KEY_ID_HEX = 32  # 128 bits of the SHA-256: unique among any realistic number of keys
STATE_KEY = "tenant"
_HEX = re.compile(r"^[0-9a-f]+$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

TenantGroups = Mapping[str, frozenset[str]]  # group name -> its members' key ids


def key_id(key: str) -> str:
    """The non-reversible id of an API key (what logs, configs and the store may hold)."""
    return hashlib.sha256(key.encode()).hexdigest()[:KEY_ID_HEX]


def parse_tenant_groups(data: Mapping[str, Any], where: str = "") -> dict[str, frozenset[str]]:
    """The `[tenants.NAME]` tables of a parsed config file."""
    tables = data.get("tenants", {})
    if not isinstance(tables, Mapping):
        raise ConfigError(f"tenants must be a table of [tenants.NAME] tables{where}")
    groups: dict[str, frozenset[str]] = {}
    owner: dict[str, str] = {}
    for name, table in tables.items():
        if not _NAME.match(name):
            raise ConfigError(f"tenants.{name}: a name is 1-64 of A-Z a-z 0-9 _ . -{where}")
        ids = table.get("key_ids") if isinstance(table, Mapping) else None
        if not isinstance(ids, list) or not ids:
            raise ConfigError(f'tenants.{name} needs key_ids = ["<key id>", ...]{where}')
        members: set[str] = set()
        for n, value in enumerate(ids):
            text = value.strip().lower() if isinstance(value, str) else ""
            if len(text) < KEY_ID_HEX or len(text) > 64 or not _HEX.match(text):
                # Not echoed: a key pasted here by mistake must not reach a log.
                raise ConfigError(
                    f"tenants.{name}.key_ids[{n}] is not a key id (the first "
                    f"{KEY_ID_HEX} hex digits of the key's SHA-256, not the key){where}"
                )
            kid = text[:KEY_ID_HEX]
            if owner.setdefault(kid, name) != name:
                raise ConfigError(
                    f"key id {kid} is in both tenants.{owner[kid]} and tenants.{name}{where}"
                )
            members.add(kid)
        groups[name] = frozenset(members)
    return groups


def load_tenant_groups(path: Path | None) -> dict[str, frozenset[str]]:
    """The tenant groups of a config file (none without a file)."""
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return parse_tenant_groups(data, f" in {path}")


def tenant_ids(keys: Iterable[str], groups: TenantGroups) -> dict[str, str]:
    """Each API key -> the tenant id its responses are stored under."""
    group_of = {kid: name for name, ids in groups.items() for kid in ids}
    out: dict[str, str] = {}
    for key in keys:
        kid = key_id(key)
        name = group_of.get(kid)
        out[key] = f"group:{name}" if name is not None else f"key:{kid}"
    return out


def tenant_warnings(keys: Iterable[str], groups: TenantGroups) -> list[str]:
    """What an operator should hear about the groups at startup (a typo, a missing key)."""
    known = {key_id(k) for k in keys}
    if groups and not known:
        return ["[tenants] in the config has no effect: WIREBRIDGE_API_KEYS is not set"]
    return [
        f"tenants.{name}: key id {kid} matches no key in WIREBRIDGE_API_KEYS"
        for name, ids in sorted(groups.items())
        for kid in sorted(ids)
        if kid not in known
    ]


def scope_tenant(scope: Scope) -> str | None:
    """The caller's tenant id, as the gate left it; None on a bridge without keys."""
    state = scope.get("state")
    tenant = state.get(STATE_KEY) if isinstance(state, dict) else None
    return tenant if isinstance(tenant, str) else None
