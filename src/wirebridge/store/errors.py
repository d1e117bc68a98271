"""The errors the response store raises, each carrying what the server needs for its answer.

The store knows nothing of HTTP; it names the cause (`code`) and the request parameter at fault
(`param`) the way the OpenAI API does, and the server picks the status: a `ResponseNotFoundError`
is a 404 on `GET`/`DELETE /v1/responses/{id}`, while `PreviousResponseNotFoundError` and
`InvalidParameterError` are 400s. Messages never contain a database password (see `redact_dsn`).
"""

from __future__ import annotations

from ..errors import WirebridgeError


class StoreError(WirebridgeError):
    """The store failed: it cannot be reached, or its schema is not one this version knows."""


class SchemaVersionError(StoreError):
    """The database was migrated by a newer wirebridge; downgrading its schema is not supported."""


class ResponseNotFoundError(StoreError):
    """No stored response has this id: it never existed, was deleted, or has expired."""

    code = "not_found"
    param: str | None = None

    def __init__(self, response_id: str):
        self.response_id = response_id
        super().__init__(f"No response found with id '{response_id}'.")


class PreviousResponseNotFoundError(ResponseNotFoundError):
    """`previous_response_id` names no stored response, or its chain has a missing link."""

    code = "previous_response_not_found"
    param = "previous_response_id"

    def __init__(
        self, response_id: str, *, missing_id: str | None = None, max_depth: int | None = None
    ):
        self.response_id = response_id
        self.missing_id = missing_id
        if max_depth is not None:
            message = (
                f"Previous response with id '{response_id}' cannot be continued: its chain is "
                f"longer than {max_depth} responses (or loops)."
            )
        elif missing_id is None or missing_id == response_id:
            message = f"Previous response with id '{response_id}' not found."
        else:
            message = (
                f"Previous response with id '{response_id}' cannot be continued: the earlier "
                f"response '{missing_id}' in its chain was deleted or has expired."
            )
        StoreError.__init__(self, message)


class InvalidParameterError(StoreError, ValueError):
    """A listing parameter (`limit`, `order`, `after`) is out of range; names the parameter."""

    code = "invalid_value"

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(f"{param}: {message}")


class DuplicateResponseError(StoreError):
    """A response with this id is already stored; the first record is kept unchanged."""

    def __init__(self, response_id: str):
        self.response_id = response_id
        super().__init__(f"a response with id '{response_id}' is already stored")
