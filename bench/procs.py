"""Child processes of the benchmark: the fast upstream and (later) `wirebridge serve`.

Each is started with a pipe on stdin and stopped by closing it (then terminate, then kill, each
bounded), so a crashed benchmark leaves nothing running. Only loopback addresses are used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from types import TracebackType

HERE = Path(__file__).resolve().parent


class Child:
    """A subprocess that prints a line starting with `ready_prefix` once it can serve."""

    def __init__(self, argv: list[str], *, env: dict[str, str] | None = None):
        self.argv = argv
        self.env = env
        self.proc: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, **(self.env or {})},
        )

    def read_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.argv[:3]} exited before it was ready")
        return line.strip()

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


class Upstream(Child):
    """`bench/upstream.py`: serves `workload` bodies on 127.0.0.1."""

    def __init__(self) -> None:
        super().__init__([sys.executable, str(HERE / "upstream.py")])
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Upstream:
        self.start()
        line = self.read_line()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"upstream said {line!r}, expected 'PORT <n>'")
        self.port = int(line.split()[1])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a process (`VmHWM`, KiB), from /proc."""
    return _status_kib(pid, "VmHWM:")


def vm_rss_kib(pid: int) -> int:
    return _status_kib(pid, "VmRSS:")


def _status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {key}")
