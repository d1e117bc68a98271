"""The server side: a Responses API (`/v1/responses`) in front of Chat Completions upstreams.

request.py   the request body -> a validated request (Prompt, routing key, echo fields)
encoder.py   our events -> Responses stream events (pure, the hot path)
errors.py    the OpenAI error object; exceptions -> HTTP status / `response.failed` code
history.py   the conversation-state seam (`previous_response_id`, storing responses)
gate.py      auth, request ids, access log (ASGI middleware)
app.py       the ASGI app that wires them (the I/O shell)
runner.py    running it under uvicorn (the command line and the tests)
"""

from .app import BridgeSettings, create_app

__all__ = ["BridgeSettings", "create_app"]
