"""Real llama.cpp servers for the interop tests: build (once, cached), models, processes.

- `ensure_built()` returns the cached artifacts of `scripts/build_llamacpp.sh` (llama-server, a
  venv with llama-cpp-python[server], the Qwen2 vocab and Qwen2.5 template), running the script
  when they are missing. The script locks, so concurrent callers build once.
- `ensure_models()` writes the scripted GGUF models (see scripted_model.py) into the cache.
- `ServerProcess` starts one server on a free loopback port, polls its health endpoint until it
  answers (no fixed sleeps) and kills it on exit.

Run as a script to build, write the models, start both servers on each and print their URLs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx

try:  # imported as tests.interop.llamacpp (pytest) or run as a script
    from . import scripted_model
except ImportError:  # pragma: no cover
    import scripted_model  # type: ignore[no-redef]

LLAMACPP_PYTHON_VERSION = "0.3.36"
REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build_llamacpp.sh"
VOCAB_NAME = "ggml-vocab-qwen2.gguf"
TEMPLATE_NAME = "Qwen-Qwen2.5-7B-Instruct.jinja"
CONTEXT = scripted_model.CONTEXT_LENGTH
READY_TIMEOUT_S = 120.0
BIND_ATTEMPTS = 5
BIND_ERRORS = ("couldn't bind", "address already in use", "errno 98")
THREADS = min(2, os.cpu_count() or 1)

ServerKind = Literal["llama-server", "llama-cpp-python"]
SERVER_KINDS: tuple[ServerKind, ...] = ("llama-server", "llama-cpp-python")


class ToolchainMissing(RuntimeError):
    """The machine cannot build the servers (no cmake, compiler or python venv)."""


class BuildFailed(RuntimeError):
    pass


def cache_dir() -> Path:
    override = os.environ.get("WIREBRIDGE_LLAMACPP_CACHE")
    if override:
        return Path(override)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "wirebridge" / f"llamacpp-{LLAMACPP_PYTHON_VERSION}"


@dataclass(frozen=True)
class Artifacts:
    cache: Path
    llama_server: Path
    python: Path  # the venv's interpreter, for `python -m llama_cpp.server`
    vocab: Path
    template: Path

    @classmethod
    def at(cls, cache: Path) -> Artifacts:
        return cls(
            cache=cache,
            llama_server=cache / "bin" / "llama-server",
            python=cache / "venv" / "bin" / "python",
            vocab=cache / "share" / VOCAB_NAME,
            template=cache / "share" / TEMPLATE_NAME,
        )

    def complete(self) -> bool:
        return (
            os.access(self.llama_server, os.X_OK)
            and (self.cache / "venv" / ".wirebridge-complete").exists()
            and self.vocab.exists()
            and self.template.exists()
        )


def missing_tools() -> list[str]:
    return [t for t in ("cmake", "c++", "cc", "python3", "flock") if shutil.which(t) is None]


def ensure_built(timeout_s: float = 3600.0) -> Artifacts:
    """The cached artifacts, building them first if needed (~20 min on 2 cores, once)."""
    artifacts = Artifacts.at(cache_dir())
    if artifacts.complete():
        return artifacts
    missing = missing_tools()
    if missing:
        raise ToolchainMissing(
            f"cannot build llama.cpp servers: missing {', '.join(missing)} "
            f"(run `bash {BUILD_SCRIPT.relative_to(REPO)}` on a machine that has them)"
        )
    log = artifacts.cache.parent / f"{artifacts.cache.name}-pytest-build.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.run(
            ["bash", str(BUILD_SCRIPT), "all"],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
            env={**os.environ, "WIREBRIDGE_LLAMACPP_CACHE": str(artifacts.cache)},
        )
    if proc.returncode == 3:
        raise ToolchainMissing(_tail(log))
    if proc.returncode != 0 or not artifacts.complete():
        raise BuildFailed(
            f"{BUILD_SCRIPT.name} failed (exit {proc.returncode}) after "
            f"{time.monotonic() - started:.0f} s; log {log}:\n{_tail(log)}"
        )
    return artifacts


def ensure_models(artifacts: Artifacts) -> dict[str, Path]:
    """Write (or reuse) the standard scripted models; name -> GGUF path."""
    out = artifacts.cache / "models"
    return {
        s.name: scripted_model.write_model(s, artifacts.vocab, artifacts.template, out)
        for s in scripted_model.STANDARD_SCRIPTS
    }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class ServerProcess:
    """One server on 127.0.0.1, on a free port picked at start; `base_url` is its OpenAI root
    (`.../v1`). `make_argv(port)` gives its command line. A port taken between the pick and
    the bind (other test runs share the machine) is retried with another."""

    def __init__(
        self,
        kind: str,
        make_argv: Callable[[int], Sequence[str]],
        health_path: str,
        alias: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.make_argv = make_argv
        self.health_path = health_path
        self.alias = alias
        self.env = env
        self.port = 0
        self.log_path = Path(tempfile.mkstemp(prefix=f"wirebridge-{kind}-", suffix=".log")[1])
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = READY_TIMEOUT_S) -> ServerProcess:
        if self.running:
            return self
        for attempt in range(1, BIND_ATTEMPTS + 1):
            self.port = free_port()
            with self.log_path.open("wb") as log:
                self._proc = subprocess.Popen(
                    list(self.make_argv(self.port)),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=self.env,
                    start_new_session=True,  # its own process group, killed as one at the end
                )
            try:
                self._wait_ready(timeout_s)
                return self
            except _BindFailed:
                self.stop()
                if attempt == BIND_ATTEMPTS:
                    raise RuntimeError(
                        f"{self.kind} could not bind a port in {BIND_ATTEMPTS} attempts; "
                        f"log {self.log_path}:\n{_tail(self.log_path)}"
                    ) from None
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout_s
        url = self.root_url + self.health_path
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as http:
            while True:
                code = self._proc.poll()
                if code is not None:
                    log = _tail(self.log_path)
                    if any(m in log.lower() for m in BIND_ERRORS):
                        raise _BindFailed(log)
                    raise RuntimeError(
                        f"{self.kind} exited with {code} before it was ready; "
                        f"log {self.log_path}:\n{log}"
                    )
                try:
                    resp = http.get(url)
                    if resp.status_code == 200:
                        return
                    last = f"HTTP {resp.status_code}: {resp.text[:200]}"
                except httpx.TransportError as exc:
                    last = repr(exc)
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{self.kind} not ready at {url} after {timeout_s:.0f} s ({last}); "
                        f"log {self.log_path}:\n{_tail(self.log_path)}"
                    )
                # Poll again soon: a bounded wait on the process, which also notices its exit.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=0.05)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _BindFailed(Exception):
    pass


def llama_server(artifacts: Artifacts, model: Path, alias: str) -> ServerProcess:
    def argv(port: int) -> list[str]:
        return [
            str(artifacts.llama_server),
            "--model",
            str(model),
            "--alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--ctx-size",
            str(CONTEXT),
            "--parallel",
            "1",
            "--threads",
            str(THREADS),
            "--jinja",
            "--no-webui",
        ]

    return ServerProcess("llama-server", argv, "/health", alias)


def llama_cpp_python(artifacts: Artifacts, model: Path, alias: str) -> ServerProcess:
    def argv(port: int) -> list[str]:
        return [
            str(artifacts.python),
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--model_alias",
            alias,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            str(CONTEXT),
            "--n_threads",
            str(THREADS),
            "--n_threads_batch",
            str(THREADS),
            # The default (true) keeps every prompt position's logits in an n_ctx x n_vocab
            # array (20 GB virtual; 3.6 GB written by a 6,000-token prompt): slow and heavy.
            "--logits_all",
            "false",
        ]

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return ServerProcess("llama-cpp-python", argv, "/v1/models", alias, env=env)


def wirebridge_serve(upstream: ServerProcess, home: Path) -> ServerProcess:
    """`wirebridge serve --upstream <upstream>` with an empty WIREBRIDGE_HOME (no user config).
    The bridge's model name is the upstream's alias, passed through unchanged."""

    def argv(port: int) -> list[str]:
        return [
            sys.executable,
            "-c",
            "from wirebridge.cli import main; main()",
            "serve",
            "--upstream",
            upstream.base_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]

    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WIREBRIDGE_HOME": str(home)}
    env.pop("WIREBRIDGE_API_KEYS", None)
    return ServerProcess(f"wirebridge-{upstream.kind}", argv, "/healthz", upstream.alias, env=env)


def server(kind: ServerKind, artifacts: Artifacts, model: Path, alias: str) -> ServerProcess:
    """A server of `kind` (not started: use `.start()` or `with`)."""
    factory = llama_server if kind == "llama-server" else llama_cpp_python
    return factory(artifacts, model, alias)


class ServerPool:
    """Servers started on first use, one per (kind, script), and `wirebridge serve` bridges in
    front of them; `close()` stops them all."""

    def __init__(self, artifacts: Artifacts, models: dict[str, Path]) -> None:
        self.artifacts = artifacts
        self.models = models
        self._servers: dict[tuple[ServerKind, str], ServerProcess] = {}
        self._bridges: dict[tuple[ServerKind, str], ServerProcess] = {}
        self._home = Path(tempfile.mkdtemp(prefix="wirebridge-interop-home-"))

    def get(self, kind: ServerKind, script: str) -> ServerProcess:
        key = (kind, script)
        if key not in self._servers:
            self._servers[key] = server(kind, self.artifacts, self.models[script], script).start()
        return self._servers[key]

    def bridge(self, kind: ServerKind, script: str) -> ServerProcess:
        """`wirebridge serve` in front of `get(kind, script)`; model name = script name."""
        key = (kind, script)
        if key not in self._bridges:
            upstream = self.get(kind, script)
            self._bridges[key] = wirebridge_serve(upstream, self._home).start()
        return self._bridges[key]

    def close(self) -> None:
        for table in (self._bridges, self._servers):
            while table:
                _, proc = table.popitem()
                proc.stop()
        shutil.rmtree(self._home, ignore_errors=True)


@contextlib.contextmanager
def pool() -> Iterator[ServerPool]:
    artifacts = ensure_built()
    servers = ServerPool(artifacts, ensure_models(artifacts))
    try:
        yield servers
    finally:
        servers.close()


def main() -> None:
    with pool() as servers:
        for kind in SERVER_KINDS:
            for script in servers.models:
                server = servers.get(kind, script)
                print(f"{kind} {script}: {server.base_url} (log {server.log_path})")
        if sys.stdin.isatty():
            input("servers are up; press Enter to stop them ")


if __name__ == "__main__":
    main()
