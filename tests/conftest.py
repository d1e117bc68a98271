"""Shared fixtures: the anyio backend and a scripted Chat Completions upstream on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from wirebridge.testing import ScriptedUpstream

TESTS = Path(__file__).parent
CONFORMANCE = TESTS / "conformance"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def upstream() -> AsyncIterator[ScriptedUpstream]:
    async with ScriptedUpstream() as up:
        yield up


def load_vectors(kind: str) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((CONFORMANCE / kind).glob("*.json"))]
