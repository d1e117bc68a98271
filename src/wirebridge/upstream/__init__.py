"""The HTTP shell toward Chat Completions servers: everything here does I/O.

retry.py      when to retry and how long to wait (pure policy)
transport.py  one turn's POST: wire form, attempts, retries, the error that ends them
client.py     `Client`: a turn in, events out (SSE parser + decoder over the open stream)
pool.py       the server's pooled clients, several small httpx pools per provider
"""

from .client import Client

__all__ = ["Client"]
