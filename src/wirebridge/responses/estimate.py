"""An estimated token count of a prepared Chat request, with a named local tokenizer.

Only for providers whose table opts in (`estimate_tokenizer`): a Hugging Face `tokenizer.json`,
the file every model repository ships, read from disk (nothing is downloaded at run time, so it
works offline; tiktoken would fetch its encodings from the internet on first use). The text
counted is what the exact path sends to the upstream's template: every message's role, text and
tool calls, and the tool definitions, from the same prepared payload. The chat template's own
markup is not counted (no template is run here), and neither are images or replayed reasoning,
so an estimate is usually a little below the exact count; the answer says it is an estimate.

`render` and `tokenizer_name` are pure; `load` reads the file once per path and keeps it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..jsontypes import JSON

if TYPE_CHECKING:
    from tokenizers import Tokenizer

INSTALL_HINT = "pip install 'wirebridge[estimate]'"


class EstimateUnavailable(RuntimeError):
    """The configured tokenizer cannot be used: the package or the file is missing or bad."""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # parts: the text ones are counted, images cannot be
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def render(payload: JSON) -> str:
    """The text of a Chat Completions payload that a chat template would tokenize."""
    if not isinstance(payload, dict):
        raise TypeError("a Chat Completions payload is a JSON object")
    lines: list[str] = []
    tools = payload.get("tools")
    if tools:
        lines.append(json.dumps(tools, ensure_ascii=False))
    for message in payload.get("messages") or []:
        if not isinstance(message, dict):
            continue
        lines.append(str(message.get("role", "")))
        text = _text(message.get("content"))
        if text:
            lines.append(text)
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            lines.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    return "\n".join(lines)


def tokenizer_file(configured: str) -> Path:
    """The `tokenizer.json` a configured path means: the file itself, or the one in a folder."""
    path = Path(configured).expanduser()
    return path / "tokenizer.json" if path.is_dir() else path


def tokenizer_name(configured: str) -> str:
    """How an answer names the tokenizer: the model folder's name, else the file's stem."""
    path = Path(configured.rstrip("/\\")).expanduser()
    if path.name == "tokenizer.json":
        path = path.parent
    elif path.suffix == ".json":
        return path.stem
    return path.name or str(path)


_loaded: dict[Path, Tokenizer] = {}
_lock = threading.Lock()


def load(configured: str) -> Tokenizer:
    """The tokenizer of a configured path, read on first use and kept (tens of MB, ~0.2 s)."""
    file = tokenizer_file(configured)
    with _lock:
        if file in _loaded:
            return _loaded[file]
        try:
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise EstimateUnavailable(
                f"estimate_tokenizer needs the `tokenizers` package: {INSTALL_HINT}"
            ) from exc
        try:
            tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:  # a missing file and a bad one both raise Exception here
            raise EstimateUnavailable(f"cannot load the tokenizer {file}: {exc}") from exc
        _loaded[file] = tokenizer
        return tokenizer


def estimate_tokens(configured: str, payload: JSON) -> int:
    """The estimated prompt tokens of `payload`; blocking (file read, encoding): run off-loop."""
    return len(load(configured).encode(render(payload), add_special_tokens=True).ids)
