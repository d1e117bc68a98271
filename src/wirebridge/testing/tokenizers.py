"""A script that makes a `ScriptedUpstream` tokenize like llama.cpp or vLLM, with a toy template.

llama.cpp: `POST /apply-template` (messages, tools -> `prompt`) and `POST /tokenize` (`content`
-> `tokens`); vLLM: `POST /tokenize` with `messages` (-> `count`, `tokens`). Chat Completions
requests are answered with text whose `usage.prompt_tokens` is the same count of the same
template, as a real server's would be, so a test can check a count against the run it predicts.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from .bodies import text_body
from .upstream import Reply, Script, SeenRequest

TokenizerKind = Literal["llamacpp", "vllm"]


def apply_template(messages: list[dict[str, Any]], tools: Any = None) -> str:
    """A toy chat template: one line per message, the tools first, a generation prompt last."""
    lines = [f"<tools> {json.dumps(tools)}"] if tools else []
    for m in messages:
        content = m.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        lines.append(f"<|{m.get('role')}|> {text} {json.dumps(m.get('tool_calls') or '')}")
    return "\n".join([*lines, "<|assistant|>"])


def tokenize(text: str) -> list[int]:
    """A toy tokenizer: one token per whitespace-separated word."""
    return [len(word) for word in text.split()]


def _json(body: Any, status: int = 200) -> Reply:
    return Reply(json.dumps(body).encode(), status=status, content_type="application/json")


def tokenizing_server(kind: TokenizerKind, answer: str = "ok") -> Script:
    def script(request: SeenRequest) -> Reply:
        body = request.json
        if request.path.endswith("/chat/completions"):
            count = len(tokenize(apply_template(body["messages"], body.get("tools"))))
            usage = {"prompt_tokens": count, "completion_tokens": 1, "total_tokens": count + 1}
            return Reply(text_body([answer], usage=usage))
        if kind == "llamacpp" and request.path == "/apply-template":
            return _json({"prompt": apply_template(body["messages"], body.get("tools"))})
        if kind == "llamacpp" and request.path == "/tokenize":
            return _json({"tokens": tokenize(body.get("content", ""))})  # as llama-server does
        if kind == "vllm" and request.path == "/tokenize":
            tokens = tokenize(apply_template(body["messages"], body.get("tools")))
            return _json({"count": len(tokens), "tokens": tokens, "max_model_len": 8192})
        return _json({"error": {"message": "Not Found"}}, 404)

    return script
