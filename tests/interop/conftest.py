"""Fixtures for the interop tier: real llama.cpp servers with scripted models, on loopback.

Session-scoped: the build (cached under ~/.cache/wirebridge/llamacpp-VERSION, ~20 min the first
time), the scripted models (cached by hash), and a pool of servers started on first use and
killed at the end of the session. Every test in this directory is marked `interop`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import llamacpp
from .llamacpp import Artifacts, ServerKind, ServerPool, ServerProcess

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def llamacpp_artifacts() -> Artifacts:
    """llama-server and llama-cpp-python[server], built once and cached (skips without a
    toolchain; a failed build is an error)."""
    try:
        return llamacpp.ensure_built()
    except llamacpp.ToolchainMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def scripted_models(llamacpp_artifacts: Artifacts) -> dict[str, Path]:
    """name ("text", "tool", "emoji") -> GGUF path."""
    for module in ("gguf", "numpy"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"the scripted models need the `{module}` package in the test env")
    return llamacpp.ensure_models(llamacpp_artifacts)


@pytest.fixture(scope="session")
def llamacpp_servers(
    llamacpp_artifacts: Artifacts, scripted_models: dict[str, Path]
) -> Iterator[ServerPool]:
    """`.get(kind, script)` -> a running server (started on first use, stopped at the end)."""
    servers = ServerPool(llamacpp_artifacts, scripted_models)
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture(scope="session", params=llamacpp.SERVER_KINDS)
def server_kind(request: pytest.FixtureRequest) -> ServerKind:
    kind: ServerKind = request.param
    return kind


@pytest.fixture(scope="session")
def text_server(llamacpp_servers: ServerPool, server_kind: ServerKind) -> ServerProcess:
    return llamacpp_servers.get(server_kind, "text")


@pytest.fixture(scope="session")
def tool_server(llamacpp_servers: ServerPool, server_kind: ServerKind) -> ServerProcess:
    return llamacpp_servers.get(server_kind, "tool")


@pytest.fixture(scope="session")
def emoji_server(llamacpp_servers: ServerPool, server_kind: ServerKind) -> ServerProcess:
    return llamacpp_servers.get(server_kind, "emoji")


@pytest.fixture(scope="session")
def llama_server_url(llamacpp_servers: ServerPool) -> str:
    """Base URL (`http://127.0.0.1:PORT/v1`) of llama-server with the text model."""
    return llamacpp_servers.get("llama-server", "text").base_url


@pytest.fixture(scope="session")
def llama_cpp_python_url(llamacpp_servers: ServerPool) -> str:
    """Base URL of llama-cpp-python's server with the text model."""
    return llamacpp_servers.get("llama-cpp-python", "text").base_url
