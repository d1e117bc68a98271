"""How a Responses SSE frame is written, fast: byte templates, so a delta costs one string encode.

The encoder decides what to send; this module only knows the bytes. A delta frame is its
constant head (event name, type, up to the sequence number), the number, the item's constant
middle (ids, indices: built once per item), the JSON-encoded delta, and a constant tail.
"""

from __future__ import annotations


def frame(kind: str, data: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def _head(kind: str) -> bytes:
    """The constant start of a delta frame, up to the sequence number's digits."""
    return (
        b"event: " + kind.encode() + b'\ndata: {"type":"' + kind.encode() + b'","sequence_number":'
    )


TEXT_DELTA = _head("response.output_text.delta")
REASONING_DELTA = _head("response.reasoning_text.delta")
SUMMARY_DELTA = _head("response.reasoning_summary_text.delta")
ARGUMENTS_DELTA = _head("response.function_call_arguments.delta")
TEXT_TAIL = b',"logprobs":[]}\n\n'
TAIL = b"}\n\n"


class OpenItem:
    """An output item whose `added` event went out and whose `done` has not."""

    __slots__ = ("chunks", "delta_mid", "id", "index", "summary", "summary_mid")

    def __init__(self, item_id: str, index: int, content_index: int | None):
        self.id = item_id
        self.index = index
        self.chunks: list[str] = []  # the text (or reasoning text) streamed so far
        self.summary: list[str] | None = None  # reasoning mirrored as a summary part, if on
        ids = f'"item_id":"{item_id}","output_index":{index}'
        if content_index is not None:
            ids += f',"content_index":{content_index}'
        self.delta_mid = b"," + ids.encode() + b',"delta":'
        self.summary_mid = b"," + ids.encode() + b',"summary_index":0,"delta":'
