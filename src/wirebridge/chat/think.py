"""Inline reasoning tags in the content (rule D7): `<think>...</think>`, split anywhere.

Qwen, sglang and llama.cpp (`--reasoning-format none`) put reasoning inside the content. The
splitter is a small state machine fed with content deltas; it returns (reasoning, text) pieces and
holds back only what could still be the start of a tag, so its cost stays linear.
"""

from __future__ import annotations

from typing import Literal

OPEN = "<think>"
CLOSE = "</think>"

_State = Literal["start", "think", "after", "text"]


def _partial_suffix(s: str, tag: str) -> int:
    """Length of the longest suffix of `s` that is a proper prefix of `tag`."""
    for n in range(min(len(s), len(tag) - 1), 0, -1):
        if s.endswith(tag[:n]):
            return n
    return 0


class ThinkSplitter:
    """`mode` is the provider's `think_tags`: "on" (a leading `<think>` opens) or "preopened"."""

    __slots__ = ("_buf", "_state")

    def __init__(self, mode: Literal["on", "preopened"]):
        self._state: _State = "think" if mode == "preopened" else "start"
        self._buf = ""

    def feed(self, content: str) -> tuple[str, str]:
        """One content delta -> (reasoning, text); either may be empty."""
        state = self._state
        if state == "text":
            return "", content
        buf = self._buf + content
        self._buf = ""
        reasoning = ""
        if state == "start":
            stripped = buf.lstrip()
            if len(stripped) < len(OPEN) and OPEN.startswith(stripped):
                self._buf = buf  # could still become `<think>`
                return "", ""
            if not stripped.startswith(OPEN):
                self._state = "text"
                return "", buf
            buf = stripped[len(OPEN) :]
            state = self._state = "think"
        if state == "think":
            end = buf.find(CLOSE)
            if end < 0:
                keep = _partial_suffix(buf, CLOSE)
                if keep:
                    self._buf = buf[-keep:]
                    buf = buf[:-keep]
                return buf, ""
            reasoning, buf = buf[:end], buf[end + len(CLOSE) :]
            state = self._state = "after"
        # "after": the answer's leading whitespace is dropped
        text = buf.lstrip()
        if text:
            self._state = "text"
        return reasoning, text

    def flush(self) -> tuple[str, str]:
        """End of content: what was held back goes where its state says."""
        buf, self._buf = self._buf, ""
        if self._state == "think":
            return buf, ""
        if self._state == "start":
            self._state = "text"
            return "", buf
        return "", ""
