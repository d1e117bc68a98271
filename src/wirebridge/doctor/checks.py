"""The checks: one method per finding, each reading the probe results and changing nothing.

Each says one thing about the upstream: its status (`ok` as the spec says, `info` a quirk
wirebridge absorbs, `warn` a quirk that needs an option or costs a feature, `fail` broken, `skip`
not determined), one line of words, and a JSON-able value. A failed probe's finding quotes what
the server answered. Four settle provider options and carry them (`Finding.settles`).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from .finding import Finding, Setting
from .observe import ProbeResult, ToolCallShape
from .probes import NAMED_TOOL, TOOL_PROBES, reasoning_seen, replay_order


def _settle(option: str, value: Any, reason: str) -> dict[str, Setting]:
    return {option: Setting(value, reason)}


def _call_text(call: ToolCallShape) -> str:
    args = call.arguments_json()
    shown = json.dumps(args, ensure_ascii=False) if args is not None else repr(call.arguments)
    return f"{call.name or '<no name>'}({shown})"


def _calls(result: ProbeResult) -> list[ToolCallShape]:
    return result.observation.tool_calls


class Checks:
    """The findings, one method each; every method reads the results and changes nothing."""

    def __init__(self, results: dict[str, ProbeResult]):
        self.results = results

    @property
    def streamed(self) -> list[ProbeResult]:
        return [r for r in self.results.values() if r.streamed]

    def _stream_result(self) -> ProbeResult | None:
        """The first text probe that streamed, else the last one tried."""
        tried = [self.results[n] for n in ("stream", "stream_plain") if n in self.results]
        for result in tried:
            if result.streamed:
                return result
        return tried[-1] if tried else None

    def _not_run(self, key: str, what: str) -> Finding:
        if not self.streamed:
            return Finding(key, "skip", "not probed: streaming does not work")
        if not what and any(r.unreachable for r in self.results.values()):
            what = "the upstream stopped answering"
        return Finding(key, "skip", f"not probed: {what}" if what else "not probed")

    # -- findings ----------------------------------------------------------------------------

    def streaming(self) -> Finding:
        result = self._stream_result()
        if result is None:
            return Finding("streaming", "skip", "no request was sent", False)
        if result.streamed:
            obs = result.observation
            summary = f"works: HTTP {result.status}, {obs.chunks} chunks"
            if result.probe == "stream_plain":
                summary += " (only without stream_options)"
            return Finding("streaming", "ok", summary, True)
        answer = result.answer()
        if result.unreachable:
            return Finding("streaming", "fail", f"upstream unreachable: {answer}", False)
        hint = ""
        if result.status == 404:
            hint = " (is base_url right? it usually ends in /v1; is the model name known?)"
        elif result.status in (401, 403):
            hint = " (check the API key: the provider's env_key)"
        return Finding("streaming", "fail", f"does not work: {answer}{hint}", False)

    def done(self) -> Finding:
        streamed = self.streamed
        if not streamed:
            return self._not_run("done", "")
        sent = sum(r.observation.done for r in streamed)
        if sent == len(streamed):
            return Finding("done", "ok", "sent at the end of every stream", True)
        if sent == 0:
            return Finding(
                "done",
                "info",
                "never sent: streams end at EOF (wirebridge completes after a finish_reason, D5)",
                False,
            )
        return Finding(
            "done", "info", f"sent on {sent} of {len(streamed)} streams (handled: D5)", False
        )

    def finish_reasons(self) -> Finding:
        streamed = self.streamed
        if not streamed:
            return self._not_run("finish_reasons", "")
        seen: list[str] = []
        for result in streamed:
            for reason in result.observation.finish_reasons:
                if reason not in seen:
                    seen.append(reason)
        notes = []
        if any(_calls(r) and "stop" in r.observation.finish_reasons for r in streamed):
            notes.append('tool calls ended with "stop" (kept: D4)')
        if any(not r.observation.finish_reasons for r in streamed):
            notes.append("a stream ended with [DONE] and no finish_reason (handled: D5)")
        summary = ", ".join(seen) if seen else "none"
        if notes:
            summary += "; " + "; ".join(notes)
        return Finding("finish_reasons", "info" if notes else "ok", summary, seen)

    def include_usage(self) -> Finding:
        first = self.results.get("stream")
        if first is None or first.unreachable:
            return self._not_run("include_usage", "")
        if first.streamed:
            obs = first.observation
            if obs.usage is not None:
                where = (
                    "on a chunk with choices" if obs.usage_on_choice_chunk else "in its own chunk"
                )
                return Finding(
                    "include_usage",
                    "ok",
                    f"accepted and honoured: usage {where}",
                    {"accepted": True, "honoured": True},
                    _settle("include_usage", True, "usage chunk sent when asked"),
                )
            return Finding(
                "include_usage",
                "warn",
                "accepted but ignored: no usage chunk came (include_usage = false)",
                {"accepted": True, "honoured": False},
                _settle("include_usage", False, "stream_options accepted but no usage chunk came"),
            )
        plain = self.results.get("stream_plain")
        if first.rejected and plain is not None and plain.streamed:
            return Finding(
                "include_usage",
                "warn",
                f"rejected (include_usage = false): {first.answer()}",
                {"accepted": False, "honoured": False},
                _settle("include_usage", False, f"stream_options rejected: HTTP {first.status}"),
            )
        return self._not_run("include_usage", "")

    def developer_role(self) -> Finding:
        result = self.results.get("developer")
        if result is None:
            return self._not_run("developer_role", "")
        if result.streamed:
            return Finding(
                "developer_role",
                "ok",
                'accepted (developer_role = "developer")',
                True,
                _settle("developer_role", "developer", 'role "developer" accepted'),
            )
        if result.rejected:
            why = f"HTTP {result.status}" if not result.http_ok else "error in the stream"
            return Finding(
                "developer_role",
                "warn",
                f'rejected (developer_role = "system"): {result.answer()}',
                False,
                _settle("developer_role", "system", f'role "developer" rejected: {why}'),
            )
        return Finding("developer_role", "fail", f"probe failed: {result.answer()}", None)

    def reasoning(self) -> Finding:
        streamed = self.streamed
        if not streamed:
            return self._not_run("reasoning", "")
        fields = reasoning_seen(self.results)
        opened = any(r.observation.content.lstrip().startswith("<think>") for r in streamed)
        closed_only = any(
            "</think>" in r.observation.content
            and not r.observation.content.lstrip().startswith("<think>")
            for r in streamed
        )
        think: Literal["on", "preopened", "off"] = (
            "on" if opened else "preopened" if closed_only else "off"
        )
        value = {"fields": fields, "think_tags": think}
        parts = [f"in delta.{name}" if "." not in name else f"in {name}" for name in fields]
        if think == "on":
            parts.append('inline: content starts with <think> (think_tags = "on")')
            settles = _settle("think_tags", "on", "content starts with <think>")
        elif think == "preopened":
            parts.append(
                'inline: content closes </think> it never opened (think_tags = "preopened")'
            )
            settles = _settle(
                "think_tags", "preopened", "content closes </think> without opening it"
            )
        else:
            settles = _settle("think_tags", "off", "no inline <think> tags in the content")
        if not parts:
            return Finding(
                "reasoning",
                "info",
                f"none seen in {len(streamed)} answers (the model may not reason)",
                value,
                settles,
            )
        return Finding("reasoning", "ok", "; ".join(parts), value, settles)

    def tool_required(self) -> Finding:
        result = self.results.get("tool_required")
        if result is None:
            return self._not_run("tool_required", "")
        value: dict[str, Any] = {"calls": len(_calls(result))}
        if result.rejected:
            return Finding("tool_required", "fail", f"rejected: {result.answer()}", value)
        if not result.streamed:
            return Finding("tool_required", "fail", f"probe failed: {result.answer()}", value)
        calls = _calls(result)
        if not calls:
            return Finding("tool_required", "fail", self._no_call(result), value)
        first = calls[0]
        value.update(name=first.name, arguments_json=first.arguments_json() is not None)
        if first.arguments_json() is None:
            return Finding(
                "tool_required",
                "warn",
                f"called {first.name or '<no name>'} but its arguments are not JSON: "
                f"{first.arguments[:80]!r}",
                value,
            )
        if len(calls) > 1:
            shown = ", ".join(_call_text(c) for c in calls)
            return Finding("tool_required", "info", f"{len(calls)} calls: {shown}", value)
        return Finding("tool_required", "ok", f"one call: {_call_text(first)}", value)

    def _no_call(self, result: ProbeResult) -> str:
        obs = result.observation
        if "length" in obs.finish_reasons:
            return "no call before max_tokens ran out (try a larger --max-tokens)"
        said = " ".join(obs.content.split())[:80]
        return f"no call: answered text instead ({said!r})" if said else "no call, no text"

    def tool_parallel(self) -> Finding:
        result = self.results.get("tool_parallel")
        if result is None:
            return self._not_run("tool_parallel", "")
        calls = _calls(result)
        value = {"calls": len(calls)}
        if result.rejected:
            return Finding("tool_parallel", "warn", f"rejected: {result.answer()}", value)
        if not result.streamed:
            return Finding("tool_parallel", "fail", f"probe failed: {result.answer()}", value)
        if not calls:
            return Finding("tool_parallel", "warn", self._no_call(result), value)
        if len(calls) == 1:
            return Finding(
                "tool_parallel",
                "warn",
                f"one call only: {_call_text(calls[0])} (no parallel calls)",
                value,
            )
        ids = [c.id for c in calls if c.id]
        shown = ", ".join(_call_text(c) for c in calls)
        if len(set(ids)) < len(ids):
            return Finding(
                "tool_parallel", "warn", f"{len(calls)} calls share an id: {shown}", value
            )
        return Finding("tool_parallel", "ok", f"{len(calls)} calls in one turn: {shown}", value)

    def tool_shape(self) -> list[Finding]:
        """How the chunks spell a call: index, id and name repeats, legacy function_call (D3)."""
        results = [self.results[n] for n in TOOL_PROBES if n in self.results]
        calls = [c for r in results if r.http_ok for c in _calls(r)]
        keys = ("tool_index", "tool_id_repeated", "tool_name_repeated", "legacy_function_call")
        if not calls:
            what = "no tool call was streamed"
            return [self._not_run(key, what) for key in keys]
        with_index = sum(r.observation.entries_with_index for r in results)
        without = sum(r.observation.entries_without_index for r in results)
        if without == 0:
            index = Finding("tool_index", "ok", "present on every tool-call chunk", "present")
        elif with_index == 0:
            index = Finding(
                "tool_index", "info", "absent: calls told apart by their id (D3)", "absent"
            )
        else:
            index = Finding(
                "tool_index",
                "info",
                f"present on {with_index} of {with_index + without} tool-call chunks (D3)",
                "mixed",
            )
        legacy = any(r.observation.legacy_function_call for r in results)
        return [
            index,
            self._repeat("tool_id_repeated", "id", calls, lambda c: c.id_chunks),
            self._repeat("tool_name_repeated", "name", calls, lambda c: c.name_chunks),
            Finding(
                "legacy_function_call",
                "info",
                "delta.function_call sent next to tool_calls (ignored when tool_calls is there)",
                True,
            )
            if legacy
            else Finding("legacy_function_call", "ok", "not sent", False),
        ]

    @staticmethod
    def _repeat(key: str, what: str, calls: list[ToolCallShape], count: Any) -> Finding:
        repeated = [c for c in calls if count(c) > 1]
        if not repeated:
            return Finding(key, "ok", "sent once per call", False)
        every = all(count(c) == c.chunks for c in repeated)
        where = "in every chunk of a call" if every else "in several chunks of a call"
        return Finding(key, "info", f"repeated {where} (taken once: D3)", True)

    def tool_named(self) -> Finding:
        result = self.results.get("tool_named")
        if result is None:
            return self._not_run("tool_named", "")
        calls = _calls(result)
        if result.rejected:
            return Finding("tool_named", "warn", f"rejected: {result.answer()}", None)
        if not result.streamed:
            return Finding("tool_named", "fail", f"probe failed: {result.answer()}", None)
        if not calls:
            return Finding("tool_named", "warn", f"ignored: {self._no_call(result)}", False)
        names = sorted({c.name for c in calls})
        if names == [NAMED_TOOL]:
            return Finding("tool_named", "ok", f"honoured: called {NAMED_TOOL}", True)
        return Finding(
            "tool_named",
            "warn",
            f"ignored: asked for {NAMED_TOOL}, got {', '.join(_call_text(c) for c in calls)}",
            False,
        )

    def replay(self) -> Finding:
        tried = [
            (f, self.results[f"replay_{f}"])
            for f in replay_order(self.results)
            if f"replay_{f}" in self.results
        ]
        if not tried:
            if all(n in self.results and self.results[n].rejected for n in TOOL_PROBES):
                return self._not_run("replay", "every tool request was rejected")
            return self._not_run("replay", "")
        rejected = {f: r.answer() for f, r in tried if r.rejected}
        value: dict[str, Any] = {"field": None, "rejected": rejected}
        before = "; ".join(f"with {_field_words(f)}: {a}" for f, a in rejected.items())
        for chosen, result in tried:
            if not result.streamed:
                continue
            value["field"] = chosen
            if chosen == "none":
                reason = "only a replay without reasoning is accepted"
                summary = 'accepted only without reasoning (reasoning_field = "none")'
            else:
                reason = f"a tool turn replayed with {chosen} is accepted"
                summary = f'accepted with {chosen} (reasoning_field = "{chosen}")'
            settles = _settle("reasoning_field", chosen, reason)
            if rejected:
                return Finding("replay", "warn", f"{summary}; rejected {before}", value, settles)
            return Finding("replay", "ok", summary, value, settles)
        last = tried[-1][1]
        if not last.rejected:
            return Finding("replay", "fail", f"probe failed: {last.answer()}", value)
        ways = ", ".join(_field_words(f) for f in rejected)
        first = next(iter(rejected.values()))
        summary = f"rejected every way ({ways}); the first answer: {first}"
        return Finding("replay", "fail", summary, value)

    def latency(self) -> Finding:
        result = self._stream_result()
        if result is None or not result.streamed or result.ttfb_s is None:
            return self._not_run("latency", "")
        obs = result.observation
        ttfb_ms = round(result.ttfb_s * 1000)
        first_ms = (
            round((obs.first_token_at - result.started_at) * 1000)
            if obs.first_token_at is not None
            else None
        )
        rate = None
        if obs.token_chunks > 1 and obs.first_token_at is not None and obs.last_token_at:
            span = obs.last_token_at - obs.first_token_at
            rate = round((obs.token_chunks - 1) / span, 1) if span > 0 else None
        parts = [f"first byte {ttfb_ms} ms"]
        if first_ms is not None:
            parts.append(f"first token {first_ms} ms")
        if rate is not None:
            parts.append(f"{rate:g} chunks/s over {obs.token_chunks} chunks")
        value = {"ttfb_ms": ttfb_ms, "first_token_ms": first_ms, "chunks_per_s": rate}
        return Finding("latency", "info", ", ".join(parts), value)


def _field_words(field: str) -> str:
    return "no reasoning" if field == "none" else field
