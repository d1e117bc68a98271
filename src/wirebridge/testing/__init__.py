"""Test helpers that ship with the package: a scripted Chat Completions upstream and body makers.

They are real servers on loopback, not mocks: wirebridge's own tests, benchmarks and `doctor`
tests use them, and users can use them to reproduce a provider's behaviour.
"""

from .bodies import chat_chunk, sse_body, text_body, tool_call_body
from .upstream import Reply, ScriptedUpstream, SeenRequest

__all__ = [
    "Reply",
    "ScriptedUpstream",
    "SeenRequest",
    "chat_chunk",
    "sse_body",
    "text_body",
    "tool_call_body",
]
