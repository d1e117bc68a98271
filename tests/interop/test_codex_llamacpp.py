"""Codex CLI, unchanged, through `wirebridge serve` to a real llama-server.

The whole chain with no scripted HTTP in it: Codex 0.171.0 speaks Responses to the bridge, the
bridge speaks Chat Completions to llama-server, whose tiny scripted model prints a fixed sentence
whatever Codex's ~6,000-token prompt says; Codex must print that sentence.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ..test_codex_cli import codex_binary, codex_config, codex_env
from .llamacpp import ServerPool
from .scripted_model import TEXT_SENTENCE

pytestmark = pytest.mark.interop


def test_codex_prints_the_llama_server_answer_through_the_bridge(
    llamacpp_servers: ServerPool, tmp_path: Path
) -> None:
    codex = codex_binary()
    bridge = llamacpp_servers.bridge("llama-server", "text")
    home, codex_home, workdir = tmp_path / "home", tmp_path / "codex-home", tmp_path / "work"
    for folder in (home, codex_home, workdir):
        folder.mkdir()
    (codex_home / "config.toml").write_text(
        codex_config(bridge.base_url).replace('"bridge-model"', f'"{bridge.alias}"')
    )
    env = codex_env(home, codex_home)
    done = subprocess.run(
        [str(codex), "exec", "--skip-git-repo-check", "--ephemeral", "-s", "read-only", "Hi"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, f"codex exited {done.returncode}:\n{done.stderr[-3000:]}"
    assert TEXT_SENTENCE in done.stdout, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr[-3000:]}"
