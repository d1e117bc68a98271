"""wirebridge events -> Responses API stream events (SSE frames). Sans-I/O, the server's hot path.

`ResponsesEncoder` owns the state of one response as the Responses wire shows it: the output list,
which item is open, the next `sequence_number`, and the terminal status. It is fed our events
(`feed`) and, on an upstream failure, told so (`fail`); it appends SSE frames to a buffer that the
shell drains with `take()`. It never touches a socket, a clock or the event loop: ids come from an
injected function and the response's fixed fields (id, model, echoed request options) are given.

Wire rules it keeps (the Responses API as OpenAI streams it; Codex depends on the first two):
- `response.output_item.added` comes before any delta of that item, and `output_item.done` ends it;
  text and reasoning text live in a content part (`content_part.added` / `.done`).
- `output_index` is the item's position in `response.output` (the order of `added` events), so
  clients that rebuild the response from events (the openai SDK's stream helper) see the same list.
- Every event carries `sequence_number`, counting from 0; exactly one terminal event ends the
  stream: `response.completed`, `response.incomplete` or `response.failed`.

The core decoder streams text and reasoning as deltas and reports each item whole at the end
(`output_item_done`). Function calls stream too when the decoder is asked for `ToolCallDelta`s:
the call is `added` at its first piece, each piece is an arguments delta, and the finished item
brings `.done`; a call that arrives whole (emulated custom tools, or a decoder not streaming
calls) is emitted as added -> one delta -> done when it completes.

Items go out one after another, as the API sends them: reasoning is closed when the answer or a
call starts, and reasoning that resumes after text closes the message and opens a new item (each
segment's `.done` carries that segment's text). Provider state (`encrypted_content`) is known
only when the decoder reports the whole reasoning at the end: it goes on the reasoning item if
that is still open, else on one extra reasoning item (the reasoning not yet shown, if any, and
the state) added after the others, just before the terminal event.

Shapes: the Response object and its items are `wire.py`'s Structs, built here and nowhere else.
Speed: deltas are written from per-item byte templates (one `msgspec` string encode per delta); the
response object is encoded only for the three lifecycle events.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from msgspec import UNSET

from ..events import (
    Completed,
    Event,
    Incomplete,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    ToolCallDelta,
)
from ..items import (
    CustomToolCall,
    FunctionCall,
    LocalShellCall,
    Message,
    OtherItem,
    Reasoning,
    ReasoningPart,
)
from ..jsontypes import JSON
from ..wire import (
    CompactionItem,
    CustomToolCallItem,
    FunctionCallItem,
    IncompleteDetails,
    LocalShellCallItem,
    MessageItem,
    OutputItem,
    OutputText,
    ReasoningItem,
    ReasoningText,
    Response,
    ResponseError,
    SummaryText,
    Usage,
    encode,
)
from .frames import (
    ARGUMENTS_DELTA,
    REASONING_DELTA,
    SUMMARY_DELTA,
    TAIL,
    TEXT_DELTA,
    TEXT_TAIL,
    OpenItem,
    frame,
)

log = logging.getLogger("wirebridge.server")
IdFactory = Callable[[str], str]
_encode = encode


def random_id(prefix: str) -> str:
    """`resp_`, `msg_`, `rs_`, `fc_`, `ctc_` + 32 hex digits (OpenAI's ids are opaque strings)."""
    return f"{prefix}_{uuid.uuid4().hex}"


class ResponsesEncoder:
    """State machine: `start()`, `feed(event)` per event or `fail(...)`, `take()` the frames.

    `response` is the Response object with its echoed request options; the encoder fills in
    `status`, `output`, `usage`, `error` and `incomplete_details` as the stream goes. With
    `frames=False` no bytes are produced (the non-streaming endpoint wants only the final
    object). `reasoning_summary=True` mirrors the reasoning text as a summary part too, for
    clients that only display summaries (Codex's TUI). `seal`, if given, makes each reasoning
    item's `encrypted_content` from its text and the decoder's token (reasoning_tokens.py).
    """

    def __init__(
        self,
        response: Response,
        *,
        new_id: IdFactory = random_id,
        frames: bool = True,
        reasoning_summary: bool = False,
        seal: Callable[[str, str | None], str | None] | None = None,
    ):
        self.response = response
        response.status = "in_progress"
        self.output: list[OutputItem] = response.output
        self.new_id = new_id
        self.frames = frames
        self.reasoning_summary = reasoning_summary
        self.seal = seal
        self.sequence_number = 0
        # Progress, for the ops' view of a live stream (ops/exchange.py reads, never writes):
        # events handed out by `take()`; and the events that are no output delta, counted
        # where they are made (per item, not per delta), so `deltas` costs the hot path nothing.
        self.events_sent = 0
        self._framing = 0  # lifecycle, added, done: every `_emit`
        self._mirrored = 0  # reasoning deltas repeated as summary deltas
        self.started = False
        self.finished = False  # a terminal event went out; further input is ignored
        self._out: list[bytes] = []
        self._message: OpenItem | None = None
        self._reasoning: OpenItem | None = None
        self._incomplete: str | None = None
        self._calls: dict[str, OpenItem] = {}  # streamed function calls by call_id
        # Items go out one after another: text closed earlier segments of reasoning or of the
        # message (what they showed is kept here), and provider state known only at the end
        # travels on one last reasoning item (`_late`).
        self._reasoning_before: list[str] = []
        self._text_before: list[str] = []
        self._late: Reasoning | None = None
        self._calls_added = 0  # tool calls added so far (only the next one may stream)
        self._handlers: dict[type, Callable[[Any], None]] = {
            OutputTextDelta: self._on_text,
            ReasoningContentDelta: self._on_reasoning,
            ToolCallDelta: self._on_call_delta,
            OutputItemDone: self._on_item_done,
            Incomplete: self._on_incomplete,
            Completed: self._on_completed,
        }

    # -- input -------------------------------------------------------------------------------

    def start(self) -> None:
        """`response.created` and `response.in_progress` (idempotent)."""
        if self.started:
            return
        self.started = True
        self._lifecycle("response.created")
        self._lifecycle("response.in_progress")

    def feed(self, event: Event) -> None:
        if self.finished:
            return
        if not self.started:
            self.start()
        self._handlers[type(event)](event)

    def fail(self, code: str, message: str, *, param: str | None = None) -> None:
        """End the stream with `response.failed`; open items are closed as incomplete, keeping
        what was streamed (the client saw it; the stored copy and a continuation need it)."""
        if self.finished:
            return
        if not self.started:
            self.start()
        self._close_cut_short()
        self.response.status = "failed"
        self.response.error = ResponseError(code, message, param)
        self._lifecycle("response.failed")
        self.finished = True

    def cancel(self) -> None:
        """A cancelled background run: open items closed as incomplete (what was streamed is
        kept), status `cancelled`. The API sends no terminal event for it: the stream ends."""
        if self.finished:
            return
        self._close_cut_short()
        self.response.status = "cancelled"
        self.finished = True

    def _close_cut_short(self) -> None:
        """Every open item's closing events (`.done`, `content_part.done`, `output_item.done`),
        with the text streamed so far and status `incomplete`."""
        reasoning, message, calls = self._reasoning, self._message, list(self._calls.items())
        self._reasoning = self._message = None
        self._calls.clear()
        if reasoning is not None:
            text = "".join(reasoning.chunks)
            ids: JSON = {"item_id": reasoning.id, "output_index": reasoning.index}
            self._emit("response.reasoning_text.done", {**ids, "content_index": 0, "text": text})
            self._part("response.content_part.done", reasoning, ReasoningText(text))
            summary: list[SummaryText] = []
            if reasoning.summary is not None:
                summary = [SummaryText("".join(reasoning.summary))]
                fields: JSON = {**ids, "summary_index": 0}
                self._emit(
                    "response.reasoning_summary_text.done", {**fields, "text": summary[0].text}
                )
                self._emit("response.reasoning_summary_part.done", {**fields, "part": summary[0]})
            previous = self.output[reasoning.index]
            encrypted = previous.encrypted_content if isinstance(previous, ReasoningItem) else UNSET
            if self.seal is not None:
                sealed = self.seal(text, encrypted if isinstance(encrypted, str) else None)
                encrypted = sealed if sealed is not None else UNSET
            done = ReasoningItem(reasoning.id, summary, [ReasoningText(text)], encrypted)
            done.status = "incomplete"
            self._done(reasoning, done)
        if message is not None:
            text = "".join(message.chunks)
            ids = {"item_id": message.id, "output_index": message.index, "content_index": 0}
            self._emit("response.output_text.done", {**ids, "text": text, "logprobs": []})
            self._part("response.content_part.done", message, OutputText(text))
            self._done(message, MessageItem(message.id, "incomplete", [OutputText(text)]))
        for call_id, opened in calls:
            arguments = "".join(opened.chunks)
            previous = self.output[opened.index]
            name = previous.name if isinstance(previous, FunctionCallItem) else ""
            namespace = previous.namespace if isinstance(previous, FunctionCallItem) else UNSET
            ids = {"item_id": opened.id, "output_index": opened.index}
            self._emit("response.function_call_arguments.done", {**ids, "arguments": arguments})
            done_call = FunctionCallItem(
                opened.id, "incomplete", call_id, name, arguments, namespace
            )
            self._done(opened, done_call)

    @property
    def deltas(self) -> int:
        """Output deltas encoded so far (text, reasoning, call arguments): about one token each,
        what a live stream shows as its output while the upstream has reported no usage."""
        return self.sequence_number - self._framing - self._mirrored

    @property
    def buffered_frames(self) -> int:
        """How many frames wait in the buffer (the shell's backpressure measure)."""
        return len(self._out)

    def take(self) -> bytes:
        """The frames produced since the last call, as one buffer (b"" when none)."""
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        self.events_sent = self.sequence_number  # every frame encoded so far is in `data`
        return data

    def unstore(self) -> None:
        """The store did not keep this response: the final Response says `store: false`, in
        the terminal event too while that is still the last frame buffered (not yet taken)."""
        self.response.store = False
        if self.finished and self._out:
            self._out.pop()
            self.sequence_number -= 1
            self._framing -= 1
            self._lifecycle(f"response.{self.response.status}")

    # -- deltas (the hot path) ---------------------------------------------------------------

    def _on_text(self, event: OutputTextDelta) -> None:
        item = self._message or self._open_message()
        item.chunks.append(event.delta)
        if self.frames:
            self._out.append(
                b"".join(
                    (
                        TEXT_DELTA,
                        str(self.sequence_number).encode(),
                        item.delta_mid,
                        _encode(event.delta),
                        TEXT_TAIL,
                    )
                )
            )
        self.sequence_number += 1

    def _on_reasoning(self, event: ReasoningContentDelta) -> None:
        item = self._reasoning or self._open_reasoning()
        item.chunks.append(event.delta)
        self._delta(REASONING_DELTA, item.delta_mid, event.delta)
        if item.summary is not None:
            self._mirrored += 1
            item.summary.append(event.delta)
            self._delta(SUMMARY_DELTA, item.summary_mid, event.delta)

    def _on_call_delta(self, event: ToolCallDelta) -> None:
        item = self._calls.get(event.call_id)
        if item is None:
            if self._calls or event.index != self._calls_added:
                # One item at a time, calls in index order: a call that starts while another
                # streams, or before an earlier one, comes whole when the decoder reports it.
                return
            namespace = event.namespace if event.namespace is not None else UNSET
            item = self._calls[event.call_id] = self._add(
                "fc",
                lambda id_: FunctionCallItem(
                    id_, "in_progress", event.call_id, event.name, "", namespace
                ),
                None,
            )
        item.chunks.append(event.delta)
        self._delta(ARGUMENTS_DELTA, item.delta_mid, event.delta)

    def _delta(self, head: bytes, mid: bytes, delta: str) -> None:
        if self.frames:
            self._out.append(
                b"".join((head, str(self.sequence_number).encode(), mid, _encode(delta), TAIL))
            )
        self.sequence_number += 1

    # -- items -------------------------------------------------------------------------------

    def _add(
        self, prefix: str, make: Callable[[str], OutputItem], content_index: int | None = 0
    ) -> OpenItem:
        # One item at a time: reasoning ends where the answer or a call starts, and the
        # answer's text ends where reasoning resumes (a later segment is a new item).
        if prefix == "rs":
            if self._message is not None:
                self._text_before.append("".join(self._message.chunks))
                self._close_message(Message("assistant", ()))
        elif self._reasoning is not None:
            self._reasoning_before.append("".join(self._reasoning.chunks))
            self._close_reasoning(Reasoning())
        if prefix in ("fc", "ctc", "lsh"):
            self._calls_added += 1
        opened = OpenItem(self.new_id(prefix), len(self.output), content_index)
        item = make(opened.id)
        self.output.append(item)
        self._emit("response.output_item.added", {"output_index": opened.index, "item": item})
        return opened

    def _part(self, kind: str, item: OpenItem, part: OutputText | ReasoningText) -> None:
        self._emit(
            kind,
            {"item_id": item.id, "output_index": item.index, "content_index": 0, "part": part},
        )

    def _open_message(self) -> OpenItem:
        item = self._add("msg", lambda id_: MessageItem(id_, "in_progress", []))
        self._part("response.content_part.added", item, OutputText(""))
        self._message = item
        return item

    def _open_reasoning(self) -> OpenItem:
        item = self._add("rs", lambda id_: ReasoningItem(id_, [], []))
        self._part("response.content_part.added", item, ReasoningText(""))
        if self.reasoning_summary:
            self._open_summary(item)
        self._reasoning = item
        return item

    def _open_summary(self, item: OpenItem) -> None:
        item.summary = []
        self._emit(
            "response.reasoning_summary_part.added",
            {
                "item_id": item.id,
                "output_index": item.index,
                "summary_index": 0,
                "part": SummaryText(""),
            },
        )

    def _on_item_done(self, event: OutputItemDone) -> None:
        item = event.item
        if isinstance(item, Message):
            self._final_message(item)
        elif isinstance(item, Reasoning):
            self._final_reasoning(item)
        elif isinstance(item, FunctionCall):
            self._function_call(item)
        elif isinstance(item, CustomToolCall):
            self._custom_tool_call(item)
        elif isinstance(item, LocalShellCall):  # added, then done, nothing between
            call = item
            opened = self._add(
                "lsh",
                lambda id_: LocalShellCallItem(id_, "in_progress", call.call_id, dict(call.action)),
                None,
            )
            done = LocalShellCallItem(opened.id, "completed", call.call_id, dict(call.action))
            self._done(opened, done)
        elif isinstance(item, OtherItem) and item.type == "compaction":  # compaction.py's
            token = str(item.raw.get("encrypted_content", ""))
            opened = self._add("cmp", lambda id_: CompactionItem(id_, token), None)
            self._done(opened, CompactionItem(opened.id, token))
        else:  # the decoder produces no other item type; a caller's own is not ours to invent
            log.debug("output item of type %r has no Responses form here; not sent", item.type)

    def _final_message(self, message: Message) -> None:
        """The decoder's whole message: stream what the open segment has not shown, close it."""
        shown = "".join(self._text_before)
        if self._message is None and not shown:
            self._close_message(message)  # nothing streamed: the whole item at once
            return
        if self._message is not None:
            shown += "".join(self._message.chunks)
        rest = message.text[len(shown) :] if message.text.startswith(shown) else ""
        if rest:
            self._on_text(OutputTextDelta(rest))
        if self._message is not None:
            self._close_message(Message("assistant", ()))

    def _final_reasoning(self, reasoning: Reasoning) -> None:
        """The decoder's whole reasoning (all segments' text, and the provider state)."""
        shown = "".join(self._reasoning_before)
        if self._reasoning is None and not shown and self._message is None and not self._calls:
            self._close_reasoning(reasoning)  # nothing streamed and nothing open: all at once
            return
        if self._reasoning is not None:
            shown += "".join(self._reasoning.chunks)
        text = reasoning.text
        rest = text[len(shown) :] if text.startswith(shown) else ""
        state = reasoning.encrypted_content
        if self._reasoning is not None:  # the last segment is still open: it takes the state
            if rest:
                self._on_reasoning(ReasoningContentDelta(rest))
            self._close_reasoning(Reasoning(encrypted_content=state))
        elif rest or state is not None:
            # Closed already, and another item is open: what is left goes on a reasoning item
            # of its own once everything else is done (before the terminal event).
            content = (ReasoningPart(rest),) if rest else None
            self._late = Reasoning(content=content, encrypted_content=state)

    def _close_message(self, message: Message) -> None:
        item = self._message
        if item is None:  # the whole text came at once (no deltas): stream it as one delta
            item = self._open_message()
            if message.text:
                self._on_text(OutputTextDelta(message.text))
        self._message = None
        text = message.text or "".join(item.chunks)
        self._emit(
            "response.output_text.done",
            {
                "item_id": item.id,
                "output_index": item.index,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            },
        )
        self._part("response.content_part.done", item, OutputText(text))
        self._done(item, MessageItem(item.id, "completed", [OutputText(text)]))

    def _close_reasoning(self, reasoning: Reasoning) -> None:
        item = self._reasoning
        if item is None:
            item = self._open_reasoning()
            if reasoning.text:
                self._on_reasoning(ReasoningContentDelta(reasoning.text))
        self._reasoning = None
        text = reasoning.text or "".join(item.chunks)
        ids: JSON = {"item_id": item.id, "output_index": item.index}
        self._emit("response.reasoning_text.done", {**ids, "content_index": 0, "text": text})
        part = ReasoningText(text)
        self._part("response.content_part.done", item, part)
        summary = [SummaryText(t) for t in reasoning.summary]
        if item.summary is not None:
            summary_part = SummaryText("".join(item.summary))
            self._emit(
                "response.reasoning_summary_text.done",
                {**ids, "summary_index": 0, "text": summary_part.text},
            )
            self._emit(
                "response.reasoning_summary_part.done",
                {**ids, "summary_index": 0, "part": summary_part},
            )
            summary = [summary_part]
        # The text travels back as `content` (reasoning_text) so clients replay it (rule P2).
        encrypted = reasoning.encrypted_content
        if self.seal is not None:
            encrypted = self.seal(text, encrypted)
        done = ReasoningItem(
            item.id, summary, [part], encrypted if encrypted is not None else UNSET
        )
        self._done(item, done)

    def _function_call(self, call: FunctionCall) -> None:
        namespace = call.namespace if call.namespace is not None else UNSET
        streamed = self._calls.pop(call.call_id, None)
        opened = streamed or self._add(
            "fc",
            lambda id_: FunctionCallItem(
                id_, "in_progress", call.call_id, call.name, "", namespace
            ),
            None,
        )
        done = FunctionCallItem(
            opened.id, "completed", call.call_id, call.name, call.arguments, namespace
        )
        self._call_done(opened, done, "response.function_call_arguments", "arguments", streamed)

    def _custom_tool_call(self, call: CustomToolCall) -> None:
        opened = self._add(
            "ctc",
            lambda id_: CustomToolCallItem(id_, "in_progress", call.call_id, call.name, ""),
            None,
        )
        done = CustomToolCallItem(opened.id, "completed", call.call_id, call.name, call.input)
        self._call_done(opened, done, "response.custom_tool_call_input", "input", None)

    def _call_done(
        self,
        opened: OpenItem,
        done: FunctionCallItem | CustomToolCallItem,
        event: str,
        key: str,
        streamed: OpenItem | None,
    ) -> None:
        """A call's last events: its whole value as one delta unless it streamed, then done."""
        value = done.arguments if isinstance(done, FunctionCallItem) else done.input
        ids = {"item_id": opened.id, "output_index": opened.index}
        if streamed is None and value:
            self._emit(event + ".delta", {**ids, "delta": value})
            self._framing -= 1  # a delta all the same (see `deltas`)
        self._emit(event + ".done", {**ids, key: value})
        self._done(opened, done)

    def _done(self, opened: OpenItem, item: OutputItem) -> None:
        self.output[opened.index] = item
        self._emit("response.output_item.done", {"output_index": opened.index, "item": item})

    # -- the end -----------------------------------------------------------------------------

    def _on_incomplete(self, event: Incomplete) -> None:
        self._incomplete = event.reason

    def _on_completed(self, event: Completed) -> None:
        # The decoder reports every item before `completed` (D4); close any left open anyway.
        if self._reasoning is not None:
            self._close_reasoning(Reasoning())
        if self._message is not None:
            self._close_message(Message("assistant", ()))
        if self._late is not None:
            late, self._late = self._late, None
            self._close_reasoning(late)
        if event.token_usage is not None:
            self.response.usage = Usage.of(event.token_usage)
        if self._incomplete is not None:
            self.response.status = "incomplete"
            self.response.incomplete_details = IncompleteDetails(self._incomplete)
            self._lifecycle("response.incomplete")
        else:
            self.response.status = "completed"
            self._lifecycle("response.completed")
        self.finished = True

    # -- encoding ----------------------------------------------------------------------------

    def _emit(self, kind: str, fields: JSON) -> None:
        if self.frames:
            body = {"type": kind, "sequence_number": self.sequence_number, **fields}
            self._out.append(frame(kind, _encode(body)))
        self.sequence_number += 1
        self._framing += 1

    def _lifecycle(self, kind: str) -> None:
        self._emit(kind, {"response": self.response})
