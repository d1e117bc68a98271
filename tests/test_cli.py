"""`wirebridge exec`: the real console script, run as a subprocess against the scripted upstream.

Each test gets its own WIREBRIDGE_HOME (a temp dir) and writes the config it needs there; the
upstream runs in the test's event loop while `anyio.run_process` waits for the child.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import tomlkit

from wirebridge import __version__
from wirebridge.testing import Reply, ScriptedUpstream, chat_chunk, sse_body, text_body

SCRIPT = Path(sys.executable).parent / "wirebridge"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "wirebridge"]
OK_BODY = text_body(["Hel", "lo"], usage={"prompt_tokens": 3, "completion_tokens": 2})
CLI_TIMEOUT_S = 20  # a bound on a hung child, not a wait: children take well under a second
# Runs argv[1:] with SIGINT at its default disposition. A suite started as a background job of a
# non-interactive shell inherits SIGINT ignored, SIG_IGN survives exec, and the CLI rightly keeps
# an inherited ignore; `restore_signals` resets only SIGPIPE and SIGXFSZ, so reset it here.
WITH_DEFAULT_SIGINT = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])",
]
pytestmark = pytest.mark.anyio


def sigint_ignored(pid: int) -> bool:
    """Whether the process ignores SIGINT (Linux: /proc; elsewhere assume not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    ignored = next(line for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(ignored.split()[1], 16) & (1 << (signal.SIGINT - 1)))


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WB_", "WIREBRIDGE_"))}
    env.update({"WIREBRIDGE_HOME": str(home), "PYTHONIOENCODING": "utf-8"})
    env.update(extra)
    return env


async def run_cli(
    *args: str, home: Path, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    """Run the console script to completion; stdout and stderr are pipes, stdin is `stdin`."""
    with anyio.fail_after(CLI_TIMEOUT_S):
        return await anyio.run_process(
            [*COMMAND, *args], input=stdin, env=cli_env(home, **env), check=False
        )


async def run_in_terminal(*args: str, home: Path) -> tuple[int, str]:
    """Run the console script with stdout and stderr on a pseudo-terminal; return its output."""
    master, slave = pty.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child side of the terminal closed
                return
            if not data:
                return
            chunks.append(data)

    env = cli_env(home, TERM="xterm-256color", COLUMNS="100", LINES="30")
    try:
        with anyio.fail_after(CLI_TIMEOUT_S):
            process = await anyio.open_process(
                [*COMMAND, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env
            )
            os.close(slave)
            slave = -1
            await anyio.to_thread.run_sync(drain, abandon_on_cancel=True)
            code = await process.wait()
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace")


def write_config(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    path = home / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def scripted_provider(up: ScriptedUpstream, name: str = "scripted", **options: Any) -> str:
    """A `[model_providers.NAME]` table pointing at the upstream, with fast-failing retries."""
    table = {"base_url": up.base_url, "request_max_retries": 0, "stream_max_retries": 0, **options}
    return tomlkit.dumps({"model_providers": {name: table}})


def out(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stdout.decode("utf-8")


def err(result: subprocess.CompletedProcess[bytes]) -> str:
    return result.stderr.decode("utf-8")


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    assert result.returncode == 1, (result.returncode, err(result))
    text = err(result)
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), text
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# -- the answer ---------------------------------------------------------------------------------


async def test_exec_streams_the_answer_as_plain_text(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    upstream.push(Reply(OK_BODY, split=(1, 9)))
    result = await run_cli(
        "exec", "--base-url", upstream.base_url, "--model", "m", "say hi", home=tmp_path
    )
    assert result.returncode == 0, err(result)
    assert out(result) == "Hello\n"
    assert err(result) == ""
    sent = upstream.requests[0].json
    assert sent["model"] == "m" and sent["stream"] is True
    assert sent["messages"][-1] == {"role": "user", "content": "say hi"}


async def test_exec_reads_the_prompt_from_stdin(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    upstream.push(Reply(OK_BODY))
    result = await run_cli(
        "exec", "--base-url", upstream.base_url, "-m", "m", home=tmp_path, stdin=b"from stdin\n"
    )
    assert result.returncode == 0, err(result)
    assert out(result) == "Hello\n"
    assert upstream.requests[0].json["messages"][-1]["content"] == "from stdin\n"


async def test_exec_sends_instructions_and_max_output_tokens(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    upstream.push(Reply(OK_BODY))
    result = await run_cli(
        "exec",
        "--base-url",
        upstream.base_url,
        "-m",
        "m",
        "-i",
        "be terse",
        "--max-output-tokens",
        "20",
        "q",
        home=tmp_path,
    )
    assert result.returncode == 0, err(result)
    sent = upstream.requests[0].json
    assert sent["messages"][0] == {"role": "system", "content": "be terse"}
    assert 20 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))


async def test_exec_json_prints_one_dumped_event_per_line(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    upstream.push(Reply(OK_BODY))
    result = await run_cli(
        "exec", "--base-url", upstream.base_url, "-m", "m", "--json", "hi", home=tmp_path
    )
    assert result.returncode == 0, err(result)
    events = [json.loads(line) for line in out(result).splitlines()]
    assert [e["type"] for e in events] == [
        "output_text_delta",
        "output_text_delta",
        "output_item_done",
        "completed",
    ]
    assert events[2]["item"]["content"] == [{"type": "output_text", "text": "Hello"}]
    assert events[3]["token_usage"]["total_tokens"] == 5


async def test_exec_show_reasoning_goes_to_stderr_when_piped(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    upstream.push(Reply(text_body(["42"], reasoning=["let me ", "think"])))
    args = ["exec", "--base-url", upstream.base_url, "-m", "m", "q"]
    shown = await run_cli(*args, "--show-reasoning", home=tmp_path)
    assert shown.returncode == 0, err(shown)
    assert out(shown) == "42\n"  # stdout carries the answer only
    assert err(shown) == "let me think\n"
    upstream.push(Reply(text_body(["42"], reasoning=["let me ", "think"])))
    hidden = await run_cli(*args, home=tmp_path)
    assert (out(hidden), err(hidden)) == ("42\n", "")


async def test_exec_think_tags_flag_splits_inline_reasoning(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    upstream.push(Reply(text_body(["<think>hmm</think>", "\n\nyes"])))
    result = await run_cli(
        "exec",
        "--base-url",
        upstream.base_url,
        "-m",
        "m",
        "--think-tags",
        "on",
        "--show-reasoning",
        "q",
        home=tmp_path,
    )
    assert result.returncode == 0, err(result)
    assert (out(result), err(result)) == ("yes\n", "hmm\n")


async def test_exec_notes_a_cut_short_answer(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    upstream.push(Reply(text_body(["partial"], finish_reason="length")))
    result = await run_cli("exec", "--base-url", upstream.base_url, "-m", "m", "q", home=tmp_path)
    assert result.returncode == 0
    assert out(result) == "partial\n"
    assert "cut short (max_output_tokens)" in err(result)


# -- providers, models and config ---------------------------------------------------------------


async def test_exec_uses_a_provider_from_wirebridge_home(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    write_config(tmp_path, scripted_provider(upstream, http_headers={"X-Title": "from-config"}))
    upstream.push(Reply(OK_BODY))
    result = await run_cli("exec", "--provider", "scripted", "-m", "m", "q", home=tmp_path)
    assert result.returncode == 0, err(result)
    assert upstream.requests[0].headers["x-title"] == "from-config"


async def test_exec_defaults_come_from_config(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    write_config(
        tmp_path,
        'model = "cfg-model"\nmodel_provider = "scripted"\n' + scripted_provider(upstream),
    )
    upstream.push(Reply(OK_BODY))
    result = await run_cli("exec", "q", home=tmp_path)
    assert result.returncode == 0, err(result)
    assert upstream.requests[0].json["model"] == "cfg-model"


async def test_exec_follows_a_model_route(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    routes = '[models.alias]\nprovider = "scripted"\nmodel = "real-name"\n'
    write_config(tmp_path, scripted_provider(upstream) + routes)
    upstream.push(Reply(OK_BODY))
    result = await run_cli("exec", "-m", "alias", "q", home=tmp_path)
    assert result.returncode == 0, err(result)
    assert upstream.requests[0].json["model"] == "real-name"


async def test_exec_config_flag_reads_that_file(upstream: ScriptedUpstream, tmp_path: Path) -> None:
    elsewhere = write_config(tmp_path / "elsewhere", scripted_provider(upstream, name="other"))
    upstream.push(Reply(OK_BODY))
    result = await run_cli(
        "exec",
        "--config",
        str(elsewhere),
        "--provider",
        "other",
        "-m",
        "m",
        "q",
        home=tmp_path / "empty-home",
    )
    assert result.returncode == 0, err(result)
    assert len(upstream.requests) == 1


# -- failures: exit 1, one line -----------------------------------------------------------------


async def test_exec_http_error_is_one_line_naming_status_body_and_request_id(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    body = b'{"error": {"message": "model \\"m\\" not found",\n "type": "invalid_request"}}'
    upstream.push(Reply(body, 404, {"x-request-id": "req-cli"}, content_type="application/json"))
    result = await run_cli("exec", "--base-url", upstream.base_url, "-m", "m", "q", home=tmp_path)
    line = assert_one_line_error(result, "HTTP 404", "req-cli", "not found")
    assert f"{upstream.base_url}/chat/completions" in line  # where the 404 came from
    assert out(result) == ""


async def test_exec_connection_refused_names_the_url(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    write_config(tmp_path, f'[model_providers.gone]\nbase_url = "{url}"\nrequest_max_retries = 0\n')
    result = await run_cli("exec", "--provider", "gone", "-m", "m", "q", home=tmp_path)
    assert_one_line_error(result, f"{url}/chat/completions", "could not reach")


async def test_exec_missing_api_key_names_the_variable(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    write_config(
        tmp_path,
        scripted_provider(
            upstream, env_key="WB_CLI_KEY", env_key_instructions="Export it from the vault."
        ),
    )
    result = await run_cli("exec", "--provider", "scripted", "-m", "m", "q", home=tmp_path)
    assert_one_line_error(result, "WB_CLI_KEY", "Export it from the vault.")
    assert upstream.requests == []


async def test_exec_idle_timeout_mid_answer_keeps_the_partial_answer(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    first = OK_BODY.index(b"\n\n", OK_BODY.index(b"\n\n") + 2) + 2
    upstream.push(Reply(OK_BODY, stall_after=first))
    write_config(tmp_path, scripted_provider(upstream, stream_idle_timeout_ms=300))
    result = await run_cli("exec", "--provider", "scripted", "-m", "m", "q", home=tmp_path)
    assert_one_line_error(result, "300 ms", "stream_idle_timeout_ms")
    assert out(result) == "Hel\n"  # what arrived stays, on its own line


async def test_exec_provider_error_in_the_stream(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    body = sse_body([{"error": {"message": "context length exceeded", "code": "ctx"}}])
    upstream.push(Reply(body))
    result = await run_cli("exec", "--base-url", upstream.base_url, "-m", "m", "q", home=tmp_path)
    assert_one_line_error(result, "context length exceeded")


async def test_exec_bad_config_file_is_a_failure(tmp_path: Path) -> None:
    write_config(tmp_path, "model_providers = [")
    result = await run_cli("exec", "-m", "m", "q", home=tmp_path)
    assert_one_line_error(result, "invalid TOML", str(tmp_path / "config.toml"))


# -- usage errors: exit 2 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["exec", "q"], "no model"),
        (["exec", "-m", "m"], "prompt is empty"),
        (["exec", "-m", "m", "--provider", "nope", "q"], "unknown provider 'nope'"),
        (["exec", "-m", "m", "--base-url", "ftp://x", "q"], "base_url"),
        (["exec", "-m", "m", "--config", "/nonexistent/wb.toml", "q"], "does not exist"),
        (["exec", "--frobnicate"], "No such option"),
        (["exec", "-m", "m", "--think-tags", "maybe", "q"], "--think-tags"),
    ],
    ids=[
        "no-model",
        "empty-prompt",
        "unknown-provider",
        "bad-url",
        "no-config",
        "bad-option",
        "bad-choice",
    ],
)
async def test_exec_usage_errors_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    result = await run_cli(*args, home=tmp_path)
    assert result.returncode == 2, (result.returncode, err(result))
    assert needle in err(result) and "Traceback" not in err(result)


# -- logging, terminal, entry points ------------------------------------------------------------


async def test_exec_debug_logs_the_payload_without_the_key(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    key = "sk-cli-0123456789abcdef"
    write_config(tmp_path, scripted_provider(upstream, env_key="WB_CLI_KEY"))
    upstream.push(Reply(OK_BODY))
    result = await run_cli(
        "exec",
        "--provider",
        "scripted",
        "-m",
        "m",
        "--debug",
        "secret plans",
        home=tmp_path,
        WB_CLI_KEY=key,
    )
    assert result.returncode == 0, err(result)
    assert upstream.requests[0].headers["authorization"] == f"Bearer {key}"
    assert "secret plans" in err(result) and "***" in err(result)
    assert key not in err(result) and key not in out(result)


async def test_exec_on_a_terminal_shows_a_spinner_then_the_answer(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    body = text_body(["Hel", "lo"], reasoning=["pondering"])
    cut = body.index(b"\n\n") + 2
    upstream.push(Reply(body, pieces=[body[:cut], body[cut:]], drip_s=0.3))
    code, screen = await run_in_terminal(
        "exec", "--base-url", upstream.base_url, "-m", "m", "--show-reasoning", "q", home=tmp_path
    )
    assert code == 0, screen
    assert "waiting for the model" in screen  # the spinner, before the first token
    assert "\x1b[2mpondering\x1b[0m" in screen  # reasoning, dimmed
    assert "Hello" in screen.split("pondering", 1)[1]


async def test_python_dash_m_runs_the_same_command(tmp_path: Path) -> None:
    with anyio.fail_after(20):
        result = await anyio.run_process(
            [sys.executable, "-m", "wirebridge", "--version"], env=cli_env(tmp_path), check=False
        )
    assert result.returncode == 0
    assert __version__ in result.stdout.decode()


async def test_exec_stops_quietly_when_the_reader_goes_away(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    """`wirebridge exec ... | head -c 1`: a closed stdout is not an error worth a traceback."""
    chunks = [chat_chunk({"content": "x" * 1000}) for _ in range(300)]
    upstream.push(Reply(sse_body([*chunks, chat_chunk({}, finish_reason="stop")])))
    cmd = " ".join([*COMMAND, "exec", "--base-url", upstream.base_url, "-m", "m", "q"])
    with anyio.fail_after(20):
        result = await anyio.run_process(
            ["bash", "-o", "pipefail", "-c", f"{cmd} | head -c 1"],
            env=cli_env(tmp_path),
            check=False,
        )
    assert result.stdout == b"x"
    assert "Traceback" not in err(result) and "Exception ignored" not in err(result)


async def test_exec_ctrl_c_exits_130_and_drops_the_upstream(
    upstream: ScriptedUpstream, tmp_path: Path
) -> None:
    first = OK_BODY.index(b"\n\n", OK_BODY.index(b"\n\n") + 2) + 2
    upstream.push(Reply(OK_BODY, stall_after=first))  # "Hel", then silence
    write_config(tmp_path, scripted_provider(upstream, stream_idle_timeout_ms=30_000))
    args = [*WITH_DEFAULT_SIGINT, *COMMAND, "exec", "--provider", "scripted", "-m", "m", "q"]
    with anyio.fail_after(CLI_TIMEOUT_S):
        async with await anyio.open_process(
            args, stdin=subprocess.DEVNULL, env=cli_env(tmp_path)
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            shown = b""
            while b"Hel" not in shown:  # the answer is streaming: interrupt it
                shown += await process.stdout.receive()
            assert not upstream.closed.is_set()
            if sigint_ignored(process.pid):
                process.kill()
                pytest.fail("the child ignores SIGINT (an inherited SIG_IGN): Ctrl-C cannot work")
            process.send_signal(signal.SIGINT)
            code = await process.wait()
            errors = b"".join([chunk async for chunk in process.stderr])
            await upstream.closed.wait()
    assert code == 130
    assert errors.decode().strip() == "error: interrupted"
