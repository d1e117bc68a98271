"""Incremental Server-Sent Events framing: bytes in, event data out (rule D1). No I/O.

Implements https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
for what Chat Completions needs: CR, LF and CRLF line ends (a CRLF may be split across feeds),
comments ignored, multi-line `data` joined by LF, one leading BOM stripped, an event dispatched
only when it has data. Event names, ids and `retry` carry no meaning for Chat Completions and are
read but dropped. Bytes that are not UTF-8 raise `StreamError`; at EOF an unterminated event is
discarded, as the spec says.

Cost is linear in the input: a partial line waits as a list of pieces that is joined once, when
its end arrives, and complete lines are decoded from UTF-8 in one call per feed.

Memory is bounded: with `max_event_bytes`, a line (or an event's data lines together) longer
than that raises `StreamLimitError` as soon as the excess arrives, so an upstream that never
sends a newline cannot make the bridge buffer without end. The checks cost one comparison per
feed on the common path; the slow checks run only for a feed larger than the limit itself.
"""

from __future__ import annotations

from ..errors import StreamError, StreamLimitError

BOM = b"\xef\xbb\xbf"


class SSEParser:
    """Feed it bytes as they arrive; it returns the `data` of each complete event."""

    __slots__ = (
        "_data",
        "_event_size",
        "_head",
        "_limit",
        "_pending",
        "_pending_size",
        "_skip_lf",
        "_started",
    )

    def __init__(self, max_event_bytes: int = 0) -> None:
        self._limit = max_event_bytes  # 0: no limit
        self._pending: list[bytes] = []  # pieces of the current, unterminated line
        self._pending_size = 0  # their length together
        self._event_size = 0  # an event's data lines so far, once it has more than one
        self._skip_lf = False  # the last feed ended in CR: a leading LF now ends nothing
        self._started = False  # the BOM check is done
        self._head = b""  # first bytes, held until a BOM can be ruled in or out
        self._data: list[str] | None = None  # data lines of the event being read

    def feed(self, chunk: bytes) -> list[str]:
        if not self._started:
            head = self._head + chunk
            if len(head) < len(BOM) and BOM.startswith(head):
                self._head = head
                return []
            self._started, self._head = True, b""
            chunk = head[len(BOM) :] if head.startswith(BOM) else head
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        limit = self._limit
        if end < 0:
            if chunk:
                self._pending.append(chunk)
                self._pending_size += len(chunk)
                if limit and self._pending_size > limit:
                    self._too_long(self._pending_size)
            return []
        if limit and len(chunk) > limit:
            self._check_lines(chunk)
        if self._pending:
            if limit and self._pending_size + chunk.find(b"\n") > limit:
                self._too_long(self._pending_size + chunk.find(b"\n"))
            self._pending.append(chunk[:end])
            complete = b"".join(self._pending)
            self._pending = []
        else:
            complete = chunk[:end]
        self._pending_size = len(chunk) - end - 1
        if self._pending_size:
            self._pending.append(chunk[end + 1 :])
        try:
            text = complete.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StreamError(
                f"stream is not valid utf-8 ({exc.reason} at byte {exc.start})"
            ) from None
        return self._lines(text.split("\n"))

    def _lines(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        data = self._data
        for line in lines:
            if not line:  # blank line: dispatch
                if data is not None:
                    out.append(data[0] if len(data) == 1 else "\n".join(data))
                    data = None
            elif line.startswith("data:"):
                value = line[6:] if line.startswith("data: ") else line[5:]
                if data is None:
                    data = [value]
                else:
                    self._add_line(data, value)
            elif line == "data":
                if data is None:
                    data = [""]
                else:
                    data.append("")
            # comments (":...") and other fields (event, id, retry) carry nothing for us
        self._data = data
        return out

    def _add_line(self, data: list[str], value: str) -> None:
        """A further data line of one event (rare): the event's size counts against the limit."""
        if len(data) == 1:
            self._event_size = len(data[0])
        data.append(value)
        self._event_size += len(value) + 1
        if self._limit and self._event_size > self._limit:
            self._too_long(self._event_size, "event")

    def _check_lines(self, chunk: bytes) -> None:
        """A feed larger than the limit: measure its lines (the first one continues `_pending`)."""
        lines = chunk.split(b"\n")
        lengths = [self._pending_size + len(lines[0])] + [len(line) for line in lines[1:]]
        longest = max(lengths)
        if longest > self._limit:
            self._too_long(longest)

    def _too_long(self, size: int, what: str = "line") -> None:
        self._pending, self._pending_size = [], 0
        raise StreamLimitError(
            f"the upstream sent an SSE {what} of more than {self._limit} bytes ({size} so far) "
            "(stream_max_event_bytes); not retried"
        )

    def close(self) -> None:
        """End of stream: anything not yet dispatched is discarded (WHATWG); check the tail."""
        tail = b"".join(self._pending) + self._head
        self._pending, self._pending_size, self._head, self._data = [], 0, b"", None
        try:
            tail.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StreamError(f"stream is not valid utf-8 ({exc.reason} at its end)") from None
