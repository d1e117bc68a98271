"""Responses tools -> Chat Completions tools (rule P7), and the reverse map for returned calls.

Chat Completions knows only `function` tools. Custom (freeform) tools are emulated as a function
taking one string `input`; namespace tools are flattened to their inner functions. The reverse map
lets the stream decoder turn a returned call back into what the client declared: a
`custom_tool_call`, or a `function_call` carrying its `namespace`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InputError

CUSTOM_INPUT_HINT = "Pass the tool's whole raw input as the string parameter `input`."


@dataclass(frozen=True, slots=True)
class ToolTarget:
    """What a Chat function name stands for on the Responses side."""

    kind: Literal["function", "custom"]
    namespace: str | None = None


@dataclass(slots=True)
class ToolMap:
    chat_tools: list[dict[str, Any]] = field(default_factory=list)
    targets: dict[str, ToolTarget] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)  # tool types with no Chat equivalent

    def target(self, name: str) -> ToolTarget:
        return self.targets.get(name) or _PLAIN


_PLAIN = ToolTarget("function")


def _function_tool(tool: Mapping[str, Any], where: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InputError("must be a non-empty string", field=f"{where}.name")
    function: dict[str, Any] = {"name": name}
    for key in ("description", "strict", "parameters"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _custom_tool(tool: Mapping[str, Any], where: str) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InputError("must be a non-empty string", field=f"{where}.name")
    description = str(tool.get("description") or "")
    hint = CUSTOM_INPUT_HINT
    fmt = tool.get("format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "grammar" and fmt.get("definition"):
        hint += f" The input must match this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"{description}\n\n{hint}" if description else hint,
            "parameters": {
                "type": "object",
                "properties": {"input": {"type": "string"}},
                "required": ["input"],
                "additionalProperties": False,
            },
        },
    }


def map_tools(tools: Sequence[Mapping[str, Any]]) -> ToolMap:
    """Responses tool definitions -> Chat tools plus the reverse map (rule P7)."""
    out = ToolMap()

    def add(tool: Mapping[str, Any], where: str, namespace: str | None) -> None:
        kind = tool.get("type")
        if kind == "function":
            chat = _function_tool(tool, where)
            target = ToolTarget("function", namespace)
        elif kind == "custom":
            chat = _custom_tool(tool, where)
            target = ToolTarget("custom", namespace)
        elif kind == "namespace" and namespace is None:
            inner = tool.get("tools")
            ns = tool.get("name")
            if not isinstance(inner, list) or not isinstance(ns, str):
                raise InputError("a namespace tool needs a name and a list of tools", field=where)
            for j, sub in enumerate(inner):
                add(sub, f"{where}.tools[{j}]", ns)
            return
        elif isinstance(kind, str):
            out.dropped.append(kind)  # web_search, local_shell, file_search, mcp, ...
            return
        else:
            raise InputError("is required", field=f"{where}.type")
        name = chat["function"]["name"]
        if name in out.targets:
            raise InputError(f"tool name {name!r} is declared twice", field=f"{where}.name")
        out.targets[name] = target
        out.chat_tools.append(chat)

    for i, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            raise InputError("must be an object", field=f"tools[{i}]")
        add(tool, f"tools[{i}]", None)
    return out


def map_tool_choice(choice: str | Mapping[str, Any] | None) -> str | dict[str, Any] | None:
    """Responses `tool_choice` -> Chat `tool_choice`."""
    if choice is None or isinstance(choice, str):
        return choice
    kind = choice.get("type")
    if kind in ("function", "custom") and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    if kind == "allowed_tools":
        return "required" if choice.get("mode") == "required" else "auto"
    return "auto"
