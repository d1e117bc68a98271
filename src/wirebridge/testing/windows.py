"""A script that makes a `ScriptedUpstream` enforce a context window, as real servers do.

The prompt is measured with the toy template and tokenizer of `tokenizers.py` (one token per
word), so a test can size a conversation in tokens. A prompt that does not fit is refused with
the error its server kind really answers:

- llama.cpp: HTTP 400, `{"error": {"code": 400, "type": "exceed_context_size_error",
  "message": "the request exceeds the available context size, try increasing it",
  "n_prompt_tokens": P, "n_ctx": N}}` (prompt >= window; the answer's room is not checked);
- vLLM: HTTP 400, `{"object": "error", "type": "BadRequestError", "code": 400, "message": "This
  model's maximum context length is N tokens. However, you requested T tokens (P in the
  messages, C in the completion). ..."}` (prompt + max_tokens > window), or "your request has P
  input tokens" without max_tokens;
- OpenAI: HTTP 400, `code: context_length_exceeded`, "This model's maximum context length is N
  tokens. However, your messages resulted in P tokens. ...".

`numbers=False` leaves the numbers out (a server that only says "too long"). A prompt that fits
is answered by `chat` (default: text with `usage.prompt_tokens` = the count); other paths go to
`tokenizing_server(tokenize)` when given, so the upstream can count exactly too.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from .bodies import text_body
from .tokenizers import TokenizerKind, apply_template, tokenize, tokenizing_server
from .upstream import Reply, Script, SeenRequest

WindowKind = Literal["llama.cpp", "vllm", "openai"]


def prompt_tokens(body: dict[str, Any]) -> int:
    """A Chat Completions request's prompt, in the toy tokenizer's tokens."""
    return len(tokenize(apply_template(body["messages"], body.get("tools"))))


def _error(body: Any) -> Reply:
    return Reply(json.dumps(body).encode(), status=400, content_type="application/json")


def overflow_reply(
    kind: WindowKind, window: int, prompt: int, completion: int | None, *, numbers: bool = True
) -> Reply:
    """The refusal `kind` answers for a prompt of `prompt` tokens in a `window`."""
    if kind == "llama.cpp":
        error: dict[str, Any] = {
            "code": 400,
            "message": "the request exceeds the available context size, try increasing it",
            "type": "exceed_context_size_error",
        }
        if numbers:
            error |= {"n_prompt_tokens": prompt, "n_ctx": window}
        return _error({"error": error})
    if kind == "vllm":
        if not numbers:
            message = "This model's maximum context length was exceeded."
        elif completion:
            message = (
                f"This model's maximum context length is {window} tokens. However, you "
                f"requested {prompt + completion} tokens ({prompt} in the messages, "
                f"{completion} in the completion). Please reduce the length of the messages "
                "or completion."
            )
        else:
            message = (
                f"This model's maximum context length is {window} tokens. However, your "
                f"request has {prompt} input tokens. Please reduce the length of the input "
                "messages."
            )
        return _error({"object": "error", "message": message, "type": "BadRequestError",
                       "param": None, "code": 400})  # fmt: skip
    message = (
        f"This model's maximum context length is {window} tokens. However, your messages "
        f"resulted in {prompt} tokens. Please reduce the length of the messages."
        if numbers
        else "Your input exceeds the context window of this model."
    )
    return _error(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        }
    )


def windowed_server(
    kind: WindowKind,
    window: int,
    chat: Reply | Script | None = None,
    *,
    tokenize_as: TokenizerKind | None = None,
    numbers: bool = True,
) -> Script:
    """A script refusing, as `kind` does, every Chat Completions prompt over `window` tokens."""
    counting = tokenizing_server(tokenize_as) if tokenize_as is not None else None

    def script(request: SeenRequest) -> Reply:
        if not request.path.endswith("/chat/completions"):
            if counting is not None:
                return counting(request)
            return Reply(b'{"error":{"message":"Not Found"}}', 404, content_type="application/json")
        body = request.json
        prompt = prompt_tokens(body)
        completion = body.get("max_completion_tokens") or body.get("max_tokens")
        over = prompt >= window if kind == "llama.cpp" else prompt + (completion or 0) > window
        if over:
            return overflow_reply(kind, window, prompt, completion, numbers=numbers)
        if chat is None:
            usage = {"prompt_tokens": prompt, "completion_tokens": 1, "total_tokens": prompt + 1}
            return Reply(text_body(["ok"], usage=usage))
        return chat(request) if callable(chat) else chat

    return script
