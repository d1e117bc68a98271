"""The doctor's battery: which request to send next, given what the earlier ones showed. No I/O.

`Plan` is a small state machine in the h11 manner: `next_probe()` returns the next `Probe` (or
None when the battery is over) and `record(result)` feeds back what came of it. The I/O shell
just loops. The order is fixed except where an answer changes the question:

    stream (with stream_options.include_usage)
      -> stream_plain, only if that was rejected (is it stream_options, or streaming itself?)
      -> nothing more, if no stream worked at all
    developer -> tool_required -> tool_parallel -> tool_named
    replay_<field>, in the order the reasoning seen so far suggests, until one is accepted
      (skipped when the server rejected every tool request)

At most 9 requests. Every payload is built by `build_chat_payload`, so a probe sends exactly what
the bridge would send with the options under test; later probes use the usage setting the first
one showed to work, so each probe tests one thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..chat.request import build_chat_payload
from ..prompt import Prompt
from ..provider import Provider, ReasoningField
from .observe import ProbeResult

DEFAULT_MAX_TOKENS = 128
REPLAY_CALL_ID = "call_doctor_1"
REPLAY_REASONING = "The user asks for the weather in Paris, so I call get_weather."
INSTRUCTIONS = "You are a terse assistant. Answer in one short sentence."

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_time",
    "description": "Current local time in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}
NAMED_TOOL = "get_time"  # the named tool_choice asks for the tool the question does not suggest

TITLES = {
    "stream": "streaming, [DONE], finish_reason, stream_options.include_usage",
    "stream_plain": "streaming without stream_options",
    "developer": "developer role",
    "tool_required": 'one forced tool call (tool_choice "required")',
    "tool_parallel": "two parallel tool calls",
    "tool_named": f"named tool_choice ({NAMED_TOOL})",
    "replay_reasoning_content": "replayed tool call with reasoning_content",
    "replay_reasoning": "replayed tool call with reasoning",
    "replay_none": "replayed tool call without reasoning",
}
TOOL_PROBES = ("tool_required", "tool_parallel", "tool_named")
MAX_PROBES = 9


@dataclass(frozen=True, slots=True)
class Probe:
    name: str
    title: str
    payload: dict[str, Any]


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def reasoning_seen(results: dict[str, ProbeResult]) -> list[str]:
    """Reasoning fields seen on any probe, in order of first sight."""
    seen: list[str] = []
    for result in results.values():
        for name in result.observation.reasoning_fields:
            if name not in seen:
                seen.append(name)
    return seen


def replay_order(results: dict[str, ProbeResult]) -> tuple[ReasoningField, ...]:
    """The field the model streams its reasoning in is the first one to try replaying (P2)."""
    if "reasoning_content" in reasoning_seen(results):
        return ("reasoning_content", "reasoning", "none")
    return ("reasoning", "reasoning_content", "none")


class Plan:
    """`while (probe := plan.next_probe()): plan.record(await send(probe))`."""

    def __init__(self, model: str, *, max_tokens: int = DEFAULT_MAX_TOKENS):
        self.model = model
        self.max_tokens = max_tokens
        self.results: dict[str, ProbeResult] = {}

    def record(self, result: ProbeResult) -> None:
        self.results[result.probe] = result

    @property
    def include_usage(self) -> bool:
        """Later probes send stream_options only if the first probe showed it works."""
        first = self.results.get("stream")
        return first is not None and first.streamed and first.observation.usage is not None

    def stream_works(self) -> bool:
        return any(
            self.results[n].streamed for n in ("stream", "stream_plain") if n in self.results
        )

    def next_probe(self) -> Probe | None:
        results = self.results
        if any(r.unreachable for r in results.values()):
            return None  # nothing listens there: every further request would say the same
        if "stream" not in results:
            return self._probe("stream", self._text_prompt(), Provider(include_usage=True))
        if not self.stream_works():
            if results["stream"].rejected and "stream_plain" not in results:
                return self._probe("stream_plain", self._text_prompt(), self._provider())
            return None
        if "developer" not in results:
            prompt = Prompt(
                input=[
                    {"type": "message", "role": "developer", "content": INSTRUCTIONS},
                    _user("Say hello."),
                ],
                max_output_tokens=self.max_tokens,
            )
            return self._probe("developer", prompt, self._provider(developer_role="developer"))
        if "tool_required" not in results:
            prompt = self._tool_prompt("What is the weather in Paris?", [WEATHER_TOOL], "required")
            return self._probe("tool_required", prompt, self._provider())
        if "tool_parallel" not in results:
            prompt = self._tool_prompt(
                "What is the weather in Paris and in Tokyo? Call get_weather twice, once per "
                "city, both calls in this one turn.",
                [WEATHER_TOOL],
                "required",
                parallel=True,
            )
            return self._probe("tool_parallel", prompt, self._provider())
        if "tool_named" not in results:
            prompt = self._tool_prompt(
                "What is the weather in Paris?",
                [WEATHER_TOOL, TIME_TOOL],
                {"type": "function", "name": NAMED_TOOL},
            )
            return self._probe("tool_named", prompt, self._provider())
        if all(results[n].rejected for n in TOOL_PROBES):
            return None  # no tool request works: a replayed tool call cannot either
        for field in replay_order(results):
            name = f"replay_{field}"
            if name not in results:
                return self._probe(name, self._replay_prompt(), self._provider(field))
            if not results[name].rejected:
                return None  # accepted, or failed for a reason other than the field
        return None

    # -- payloads ----------------------------------------------------------------------------

    def _provider(
        self, reasoning_field: ReasoningField = "reasoning", *, developer_role: str = "system"
    ) -> Provider:
        return Provider(
            include_usage=self.include_usage,
            reasoning_field=reasoning_field,
            developer_role=developer_role,  # type: ignore[arg-type]
        )

    def _probe(self, name: str, prompt: Prompt, provider: Provider) -> Probe:
        return Probe(name, TITLES[name], build_chat_payload(prompt, self.model, provider))

    def _text_prompt(self) -> Prompt:
        return Prompt(INSTRUCTIONS, [_user("Say hello.")], max_output_tokens=self.max_tokens)

    def _tool_prompt(
        self,
        question: str,
        tools: list[dict[str, Any]],
        choice: str | dict[str, Any],
        *,
        parallel: bool | None = None,
    ) -> Prompt:
        return Prompt(
            "You are an assistant that answers by calling tools.",
            [_user(question)],
            tools,
            tool_choice=choice,
            parallel_tool_calls=parallel,
            max_output_tokens=self.max_tokens,
        )

    def _replay_prompt(self) -> Prompt:
        """user, reasoning + tool call, tool output: the turn DeepSeek and Kimi check (P2)."""
        return Prompt(
            "You are an assistant that answers by calling tools.",
            [
                _user("What is the weather in Paris?"),
                {
                    "type": "reasoning",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": REPLAY_REASONING}],
                },
                {
                    "type": "function_call",
                    "name": "get_weather",
                    "arguments": json.dumps({"city": "Paris"}),
                    "call_id": REPLAY_CALL_ID,
                },
                {
                    "type": "function_call_output",
                    "call_id": REPLAY_CALL_ID,
                    "output": json.dumps({"temperature_c": 18, "sky": "clear"}),
                },
            ],
            [WEATHER_TOOL],
            max_output_tokens=self.max_tokens,
        )
