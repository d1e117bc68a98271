"""Shared fixtures: the anyio backend, a scripted Chat Completions upstream on loopback, and a
PostgreSQL server to make scratch databases on (the store and multi-process server tests).

PostgreSQL comes from $WIREBRIDGE_TEST_POSTGRES_URL, else from scripts/start_postgres.sh. When
none can be had, tests that need it skip with the reason, unless WIREBRIDGE_REQUIRE_POSTGRES=1
(scripts/test.sh, CI), where they fail instead.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from wirebridge.testing import ScriptedUpstream

TESTS = Path(__file__).parent
CONFORMANCE = TESTS / "conformance"
START_POSTGRES = TESTS.parent / "scripts" / "start_postgres.sh"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream() as up:
        yield up


def free_port() -> int:
    """A loopback port that nothing listens on once this returns (the socket that held it is
    closed): the address of an upstream that refuses connections."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def load_vectors(kind: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((CONFORMANCE / kind).glob("*.json"))]


# ---------------------------------------------------------------------------------------------
# PostgreSQL


@functools.cache
def postgres_server() -> tuple[str | None, str]:
    """(URL of a PostgreSQL server we may create databases on, or None; why not)."""
    url = os.environ.get("WIREBRIDGE_TEST_POSTGRES_URL")
    if url:
        return url, ""
    try:
        proc = subprocess.run(
            ["bash", str(START_POSTGRES)], capture_output=True, text=True, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"scripts/start_postgres.sh could not run: {exc}"
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return None, f"scripts/start_postgres.sh failed (exit {proc.returncode}): {tail}"
    return lines[-1], ""


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url, reason = postgres_server()
    if url is None:
        if os.environ.get("WIREBRIDGE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (WIREBRIDGE_REQUIRE_POSTGRES=1): {reason}")
        pytest.skip(f"no PostgreSQL server for the store tests: {reason}")
    return url


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


async def create_scratch_database(server_url: str) -> str:
    name = f"wbtest_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(server_url, name)


async def drop_scratch_database(server_url: str, url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
