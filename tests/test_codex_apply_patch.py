"""Real Codex 0.171 edits a file with apply_patch through the bridge (rule P7, end to end).

Codex declares apply_patch (a `custom` tool with a Lark grammar) only for a model its catalog
says is `apply_patch_tool_type = "freeform"`, so the test writes such a catalog. The bridge
declares the tool upstream as a function taking `input`; the scripted upstream calls it with a
patch; the bridge must hand Codex a `custom_tool_call` (streamed as custom-tool input events),
Codex applies the patch in its workspace-write sandbox and sends the output back, which the next
upstream request must carry as the answer to the same call.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.codex_support import CodexHome, catalog, custom_provider_config
from tests.test_codex_cli import ProxyTrap, trap  # noqa: F401  (the fixture)
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body, tool_call_body

pytestmark = [pytest.mark.anyio, pytest.mark.interop]

PATCH = """\
*** Begin Patch
*** Update File: greeting.txt
@@
-hello from the old line
+hello from the patched line
*** End Patch
"""


async def test_codex_edits_a_file_with_apply_patch(tmp_path: Path, trap: ProxyTrap) -> None:  # noqa: F811
    seen_tools: list[list[str]] = []

    def model(request: SeenRequest) -> Reply:
        body = request.json
        seen_tools.append([t["function"]["name"] for t in body.get("tools", [])])
        if not any(m["role"] == "tool" for m in body["messages"]):
            return Reply(tool_call_body([("call_patch_1", "apply_patch", {"input": PATCH})]))
        return Reply(text_body(["The file is patched."]))

    codex = CodexHome(tmp_path, trap)
    target = codex.work / "greeting.txt"
    target.write_text("hello from the old line\n")
    async with (
        ScriptedUpstream(default=model) as upstream,
        running_bridge(passthrough_config(upstream.base_url)) as bridge,
    ):
        codex.write(custom_provider_config(bridge.base_url, codex.catalog_path), catalog())
        run = await codex.exec("-s", "workspace-write", "Fix the greeting in greeting.txt.")
    assert run.returncode == 0, f"codex exited {run.returncode}:\n{run.stderr[-3000:]}"
    assert target.read_text() == "hello from the patched line\n", run.stderr[-3000:]
    assert "The file is patched." in run.stdout
    assert "apply_patch" in seen_tools[0], seen_tools[0]
    declared = next(
        t["function"]
        for t in upstream.requests[0].json["tools"]
        if t["function"]["name"] == "apply_patch"
    )
    assert declared["parameters"]["required"] == ["input"]
    assert len(upstream.requests) == 2
    second = upstream.requests[1].json["messages"]
    call = second[-2]["tool_calls"][0]
    assert call["id"] == "call_patch_1" and call["function"]["name"] == "apply_patch"
    assert json.loads(call["function"]["arguments"]) == {"input": PATCH}  # replayed as sent
    assert second[-1]["role"] == "tool" and second[-1]["tool_call_id"] == "call_patch_1"
    assert trap.attempts == [], f"Codex tried to reach other hosts: {trap.attempts}"
