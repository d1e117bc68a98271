"""The server side: a Responses API (`/v1/responses`) in front of Chat Completions upstreams.

request.py   the request body -> a validated request (Prompt, routing key, echo fields)
encoder.py   our events -> Responses stream events (pure, the hot path)
errors.py    the OpenAI error object; exceptions -> HTTP status / `response.failed` code
history.py   the conversation-state seam (`previous_response_id`, storing responses)
siblings.py  a replayed call's reasoning, from the stored step that made it
relay.py     one answer from upstream events to a client: commit, keep-alives, failures
settings.py  what the server was told (immutable)
runtime.py   what a running server holds open: the store, the upstream pools
gate.py      auth, request ids, access log (ASGI middleware)
stored.py    GET/DELETE of stored responses and their input items
app.py       the ASGI app that wires them (the HTTP shell)
runner.py    running it under uvicorn (the command line and the tests)
"""

from .app import create_app
from .settings import BridgeSettings

__all__ = ["BridgeSettings", "create_app"]
