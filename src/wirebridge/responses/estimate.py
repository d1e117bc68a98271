"""An estimated token count of a prepared Chat request, with a named local tokenizer.

Only for providers whose table opts in (`estimate_tokenizer`): a Hugging Face `tokenizer.json`,
the file every model repository ships, read from disk (nothing is downloaded at run time, so it
works offline; tiktoken would fetch its encodings from the internet on first use). The request
counted is the same prepared payload the exact path sends to the upstream's template.

When the folder also holds the model's chat template (`chat_template.jinja`, or `chat_template`
in `tokenizer_config.json`), it is rendered as transformers' `apply_chat_template` does (jinja2,
sandboxed) and the prompt is tokenized whole: the count then matches a server running that
template. Without one, only every message's role, text and tool calls and the tool definitions
are counted, and the template's markup is missed. Either way it is an estimate (the server may
run another template, or render it differently), and the answer says so.

`render_plain` and `tokenizer_name` are pure; `load` reads the folder once per path.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..jsontypes import JSON

if TYPE_CHECKING:
    from tokenizers import Tokenizer

INSTALL_HINT = "pip install 'wirebridge[estimate]'"


class EstimateUnavailable(RuntimeError):
    """The configured tokenizer cannot be used: the package or the file is missing or bad."""


class TemplateFailed(ValueError):
    """The model's chat template refused this request (its `raise_exception`, a bad field)."""


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # parts: the text ones are counted, images cannot be
        return "\n".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def _messages(payload: JSON) -> list[dict[str, Any]]:
    if not isinstance(payload, dict):
        raise TypeError("a Chat Completions payload is a JSON object")
    return [m for m in payload.get("messages") or [] if isinstance(m, dict)]


def render_plain(payload: JSON) -> str:
    """The text of a Chat Completions payload that any chat template would tokenize."""
    lines: list[str] = []
    messages = _messages(payload)
    tools = payload.get("tools") if isinstance(payload, dict) else None
    if tools:
        lines.append(json.dumps(tools, ensure_ascii=False))
    for message in messages:
        lines.append(str(message.get("role", "")))
        text = _text(message.get("content"))
        if text:
            lines.append(text)
        for call in message.get("tool_calls") or []:
            function = call.get("function", {}) if isinstance(call, dict) else {}
            lines.append(f"{function.get('name', '')} {function.get('arguments', '')}")
    return "\n".join(lines)


def template_messages(payload: JSON) -> list[dict[str, Any]]:
    """Messages as chat templates take them: text content, tool-call arguments as objects.

    Templates concatenate `content` as a string and `tojson` the arguments, as transformers'
    callers and llama.cpp (for templates that need object arguments) hand them.
    """
    out: list[dict[str, Any]] = []
    for message in _messages(payload):
        copy = dict(message)
        if isinstance(copy.get("content"), list):
            copy["content"] = _text(copy["content"])
        calls = []
        for call in copy.get("tool_calls") or []:
            function = dict(call.get("function") or {}) if isinstance(call, dict) else {}
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                with contextlib.suppress(ValueError):  # not JSON: the string as it was sent
                    function["arguments"] = json.loads(arguments)
            calls.append({**call, "function": function} if isinstance(call, dict) else call)
        if calls:
            copy["tool_calls"] = calls
        out.append(copy)
    return out


def template_tools(payload: JSON) -> list[dict[str, Any]] | None:
    """Tools as servers hand them to a template: name, description and parameters only.

    llama.cpp parses each tool into those three and drops the rest (`strict`), so a template
    that prints the tools as JSON prints no more.
    """
    tools = payload.get("tools") if isinstance(payload, dict) else None
    if not isinstance(tools, list) or not tools:
        return None
    out: list[dict[str, Any]] = []
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict):
            out.append(tool)
            continue
        kept = {k: function[k] for k in ("name", "description", "parameters") if k in function}
        out.append({**tool, "function": kept})
    return out


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


@dataclass(frozen=True)
class Estimator:
    """A loaded tokenizer, and the model's chat template when its folder has one."""

    tokenizer: Tokenizer
    template: Callable[..., str] | None = None
    special: dict[str, str] | None = None  # bos_token, eos_token... as the template reads them

    def count(self, payload: JSON) -> int:
        if self.template is None:
            return len(self.tokenizer.encode(render_plain(payload), add_special_tokens=True).ids)
        try:
            prompt = self.template(
                messages=template_messages(payload),
                tools=template_tools(payload),
                add_generation_prompt=True,
                **(self.special or {}),
            )
        except Exception as exc:  # a server running this template would refuse it too
            raise TemplateFailed(f"the model's chat template refused the request: {exc}") from exc
        # the template writes its own BOS, as apply_chat_template(tokenize=True) relies on
        return len(self.tokenizer.encode(prompt, add_special_tokens=False).ids)


def _token_text(value: Any) -> str | None:
    if isinstance(value, dict):  # {"content": "<|im_end|>", ...} in older configs
        value = value.get("content")
    return value if isinstance(value, str) else None


def _chat_template(folder: Path, config: dict[str, Any]) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    return template if isinstance(template, str) else None


def _compile(source: str) -> Callable[..., str]:
    """The template as transformers compiles it: sandboxed jinja2, its tojson and helpers."""
    from jinja2.exceptions import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, **kw: Any) -> str:
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, **kw)

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals.update(raise_exception=raise_exception, strftime_now=strftime_now)
    return env.from_string(source).render


_loaded: dict[Path, Estimator] = {}
_lock = threading.Lock()


def load(configured: str) -> Estimator:
    """The estimator of a configured path, read on first use and kept (tens of MB, ~0.2 s)."""
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
        estimator = Estimator(tokenizer)
        config_file = file.parent / "tokenizer_config.json"
        try:
            config = json.loads(config_file.read_text("utf-8")) if config_file.is_file() else {}
            source = _chat_template(file.parent, config if isinstance(config, dict) else {})
            if source is not None:
                special = {
                    key: text
                    for key in ("bos_token", "eos_token", "unk_token", "pad_token")
                    if (text := _token_text(config.get(key))) is not None
                }
                estimator = Estimator(tokenizer, _compile(source), special)
        except ImportError as exc:
            raise EstimateUnavailable(
                f"{file.parent} has a chat template, which needs `jinja2`: {INSTALL_HINT}"
            ) from exc
        except Exception as exc:  # unreadable JSON, a template that does not compile
            message = f"cannot load the chat template in {file.parent}: {exc}"
            raise EstimateUnavailable(message) from exc
        _loaded[file] = estimator
        return estimator


def estimate_tokens(configured: str, payload: JSON) -> tuple[int, bool]:
    """The estimated prompt tokens of `payload`, and whether the chat template ran.

    Blocking (the folder is read on first use, a long prompt takes a while): run it off-loop.
    """
    estimator = load(configured)
    return estimator.count(payload), estimator.template is not None
