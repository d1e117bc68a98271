"""Running real Codex 0.171 in tests: a temp HOME/CODEX_HOME, a model catalog, one `exec`.

Shared by the Codex tests that need a catalog entry (apply_patch, a small context window) or
the built-in `openai` provider. The catalog entry starts from
`fixtures/codex/model-catalog-minimal.json` with our own short `base_instructions` (Codex's own
prompt never ships in this repository).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from tests.test_codex_cli import ProxyTrap, codex_binary, codex_env

FIXTURES = Path(__file__).parent / "fixtures" / "codex"
MODEL = "bridge-model"
BASE_INSTRUCTIONS = (
    "You are a coding assistant working in the user's workspace. Use the tools you are given "
    "to read and change files, and keep answers short."
)
QUIET = """\
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
"""


def catalog(context_window: int | None = None, **extra: Any) -> dict[str, Any]:
    """The fixture's catalog, its one entry renamed to MODEL and given our instructions."""
    data: dict[str, Any] = json.loads((FIXTURES / "model-catalog-minimal.json").read_text())
    entry = data["models"][0]
    entry.update(slug=MODEL, display_name=MODEL, base_instructions=BASE_INSTRUCTIONS, **extra)
    if context_window is not None:
        entry["context_window"] = context_window
    return data


def custom_provider_config(base_url: str, catalog_path: Path, extra: str = "") -> str:
    return f"""\
model = "{MODEL}"
model_provider = "wirebridge"
model_catalog_json = "{catalog_path}"
{extra}
{QUIET}
[model_providers.wirebridge]
name = "wirebridge"
base_url = "{base_url}"
wire_api = "responses"
"""


def openai_provider_config(base_url: str, catalog_path: Path, extra: str = "") -> str:
    """Codex's built-in `openai` provider pointed at the bridge (`openai_base_url`)."""
    return f"""\
model = "{MODEL}"
openai_base_url = "{base_url}"
model_catalog_json = "{catalog_path}"
{extra}
{QUIET}"""


@dataclass
class CodexRun:
    returncode: int
    stdout: str
    stderr: str


@dataclass
class CodexHome:
    """A scratch HOME, CODEX_HOME and workspace for one test, with proxies trapped."""

    root: Path
    trap: ProxyTrap

    def __post_init__(self) -> None:
        self.home = self.root / "home"
        self.codex_home = self.root / "codex-home"
        self.work = self.root / "work"
        for folder in (self.home, self.codex_home, self.work):
            folder.mkdir(exist_ok=True)
        self.catalog_path = self.root / "catalog.json"

    def write(self, config: str, catalog_data: dict[str, Any]) -> None:
        self.catalog_path.write_text(json.dumps(catalog_data))
        (self.codex_home / "config.toml").write_text(config)

    def env(self, **extra: str) -> dict[str, str]:
        env = codex_env(self.home, self.codex_home)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        proxy = f"http://127.0.0.1:{self.trap.port}"
        for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = proxy
        env.update(extra)
        return env

    async def exec(self, *args: str, env: dict[str, str] | None = None) -> CodexRun:
        """`codex exec --skip-git-repo-check ARGS...` in the workspace."""
        codex = codex_binary()
        with anyio.fail_after(180):
            done = await anyio.run_process(
                [str(codex), "exec", "--skip-git-repo-check", *args],
                cwd=self.work,
                env=env or self.env(),
                check=False,
                stdin=subprocess.DEVNULL,
            )
        return CodexRun(done.returncode, done.stdout.decode(), done.stderr.decode())
