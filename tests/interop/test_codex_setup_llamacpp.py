"""`wirebridge codex` against a real llama-server writes the window the server really has.

The server runs with `--ctx-size 8192` while its model was trained for 32,768 tokens, so the
catalog can only hold 8,192 if the setup read the server's `n_ctx` (`GET /props`), not the
model's trained length.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import llamacpp
from .llamacpp import Artifacts, ServerProcess

pytestmark = pytest.mark.interop

WIREBRIDGE = str(Path(sys.executable).parent / "wirebridge")
SERVED_CTX = 8192


@pytest.fixture
def small_window_server(
    llamacpp_artifacts: Artifacts, scripted_models: dict[str, Path]
) -> Iterator[ServerProcess]:
    assert SERVED_CTX != llamacpp.CONTEXT, "the served window must differ from the trained one"
    standard = llamacpp.llama_server(llamacpp_artifacts, scripted_models["text"], "text")

    def argv(port: int) -> list[str]:
        args = list(standard.make_argv(port))
        args[args.index("--ctx-size") + 1] = str(SERVED_CTX)
        return args

    with ServerProcess("llama-server", argv, "/health", "text") as server:
        yield server


def test_wirebridge_codex_writes_llama_servers_real_n_ctx(
    small_window_server: ServerProcess, tmp_path: Path
) -> None:
    instructions = tmp_path / "instructions.txt"
    instructions.write_text("Our own test instructions.")
    codex_home = tmp_path / "codex-home"
    done = subprocess.run(
        [
            WIREBRIDGE,
            "codex",
            "--upstream",
            small_window_server.base_url,
            "--codex-home",
            str(codex_home),
            "--instructions",
            str(instructions),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "WIREBRIDGE_HOME": str(tmp_path / "wbhome")},
    )
    assert done.returncode == 0, done.stderr
    catalog = json.loads((codex_home / "wirebridge-models.json").read_text())
    [entry] = catalog["models"]
    assert entry["slug"] == "text"
    assert entry["context_window"] == SERVED_CTX
