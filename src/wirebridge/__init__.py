"""wirebridge: the Responses API in front of Chat Completions model servers.

The library face: `Client(provider, model).stream(prompt)` turns a history of Responses items
into a Chat Completions request and streams the answer back as Responses-style events.
"""

__version__ = "0.1.0"

from .aggregate import aggregate
from .chat.request import build_chat_payload
from .client import Client
from .events import dump
from .prompt import Prompt
from .provider import Provider

__all__ = [
    "Client",
    "Prompt",
    "Provider",
    "__version__",
    "aggregate",
    "build_chat_payload",
    "dump",
]
