"""wirebridge: the Responses API in front of Chat Completions model servers.

The library face: `Client(provider).stream(prompt, model=...)` turns a history of Responses items
into a Chat Completions request and streams the answer back as Responses-style events.
"""

from ._version import __version__
from .aggregate import aggregate
from .chat.request import build_chat_payload
from .events import dump
from .prompt import Prompt
from .provider import Provider
from .upstream.client import Client

__all__ = [
    "Client",
    "Prompt",
    "Provider",
    "__version__",
    "aggregate",
    "build_chat_payload",
    "dump",
]
