"""Incremental Server-Sent Events framing: bytes in, event data out (rule D1). No I/O.

Implements https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
for what Chat Completions needs: CR, LF and CRLF line ends (a CRLF may be split across feeds),
comments ignored, multi-line `data` joined by LF, one leading BOM stripped, an event dispatched
only when it has data. Event names, ids and `retry` carry no meaning for Chat Completions and are
read but dropped. Bytes that are not UTF-8 raise `StreamError`; at EOF an unterminated event is
discarded, as the spec says.

Cost is linear in the input: a partial line waits as a list of pieces that is joined once, when
its end arrives, and complete lines are decoded from UTF-8 in one call per feed.
"""

from __future__ import annotations

from ..errors import StreamError

BOM = b"\xef\xbb\xbf"


class SSEParser:
    """Feed it bytes as they arrive; it returns the `data` of each complete event."""

    __slots__ = ("_data", "_head", "_pending", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._pending: list[bytes] = []  # pieces of the current, unterminated line
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
        if end < 0:
            if chunk:
                self._pending.append(chunk)
            return []
        if self._pending:
            self._pending.append(chunk[:end])
            complete = b"".join(self._pending)
            self._pending = []
        else:
            complete = chunk[:end]
        if end + 1 < len(chunk):
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
                    data.append(value)
            elif line == "data":
                if data is None:
                    data = [""]
                else:
                    data.append("")
            # comments (":...") and other fields (event, id, retry) carry nothing for us
        self._data = data
        return out

    def close(self) -> None:
        """End of stream: anything not yet dispatched is discarded (WHATWG); check the tail."""
        tail = b"".join(self._pending) + self._head
        self._pending, self._head, self._data = [], b"", None
        try:
            tail.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StreamError(f"stream is not valid utf-8 ({exc.reason} at its end)") from None
