"""The Conversations API through the openai SDK against an in-process bridge (SQLite store), and
`responses.create(conversation=...)`: history in, the turn's items appended, ids shared with
`input_items`, tenants, expiry, and two concurrent turns on one conversation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from openai import AsyncOpenAI
from openai.types.conversations import (
    Conversation,
    ConversationDeletedResource,
    ConversationItem,
    ConversationItemList,
)
from openai.types.responses import Response as SdkResponse
from pydantic import TypeAdapter

from wirebridge.responses import BridgeSettings
from wirebridge.responses.testing import passthrough_config, running_bridge
from wirebridge.store import open_store
from wirebridge.testing import Reply, ScriptedUpstream, SeenRequest, text_body

from . import test_store
from .test_store import T0, Clock

store_url = test_store.store_url  # SQLite and PostgreSQL

pytestmark = pytest.mark.anyio

ALICE, BOB = "alice-key-0f3c9e", "bob-key-7a1d42"
ITEM = TypeAdapter(ConversationItem)


def echo(request: SeenRequest) -> Reply:
    return Reply(text_body([f"echo: {request.json['messages'][-1]['content']}"]))


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


@asynccontextmanager
async def bridge(
    tmp_path: Path,
    upstream: ScriptedUpstream,
    *,
    keys: frozenset[str] = frozenset(),
    clock: Clock | None = None,
    store_url: str | None = None,
) -> AsyncIterator[str]:
    """An in-process bridge on a SQLite file (or `store_url`); yields its base URL (…/v1)."""
    url = store_url or f"sqlite://{tmp_path / 'responses.db'}"
    store = await open_store(url, clock=clock or Clock(), ttl_seconds=3600)
    settings = BridgeSettings(passthrough_config(upstream.base_url), api_keys=keys, store=store)
    async with store, running_bridge(settings) as running:
        yield running.base_url


def sdk(base_url: str, key: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=10)


async def test_create_retrieve_update_delete_pass_the_sdks_own_types(tmp_path: Path) -> None:
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridge(tmp_path, upstream) as url,
        sdk(url) as client,
    ):
        raw = await client.conversations.with_raw_response.create(
            items=[user("Hi"), {"type": "message", "role": "assistant", "content": "Hello"}],
            metadata={"topic": "greeting"},
        )
        made = Conversation.model_validate(raw.http_response.json(), strict=True)
        assert made.object == "conversation" and made.id.startswith("conv_")
        assert made.metadata == {"topic": "greeting"} and made.created_at == T0

        fetched = await client.conversations.retrieve(made.id)
        assert fetched == made
        raw_update = await client.conversations.with_raw_response.update(
            made.id, metadata={"topic": "farewell"}
        )
        updated = Conversation.model_validate(raw_update.http_response.json(), strict=True)
        assert updated.metadata == {"topic": "farewell"}

        raw_items = await client.conversations.items.with_raw_response.list(made.id, order="asc")
        listed = ConversationItemList.model_validate(raw_items.http_response.json(), strict=True)
        first, second = listed.data
        assert first.type == "message" and first.role == "user" and first.status == "completed"
        assert first.content[0].type == "input_text" and first.content[0].text == "Hi"
        assert second.type == "message" and second.role == "assistant"
        assert (listed.first_id, listed.last_id) == (first.id, second.id)
        assert first.id.startswith("msg_") and not listed.has_more

        one = await client.conversations.items.with_raw_response.retrieve(
            second.id, conversation_id=made.id
        )
        assert ITEM.validate_python(one.http_response.json(), strict=True) == second

        raw_deleted = await client.conversations.with_raw_response.delete(made.id)
        deleted = ConversationDeletedResource.model_validate(
            raw_deleted.http_response.json(), strict=True
        )
        assert deleted.deleted and deleted.id == made.id
        assert deleted.object == "conversation.deleted"
        for call in (
            client.conversations.retrieve(made.id),
            client.conversations.items.list(made.id),
            client.conversations.delete(made.id),
        ):
            with pytest.raises(openai.NotFoundError):
                await call


async def test_items_page_both_ways_and_append_and_delete_keep_order(tmp_path: Path) -> None:
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridge(tmp_path, upstream) as url,
        sdk(url) as client,
    ):
        made = await client.conversations.create()
        added = await client.conversations.items.create(
            made.id,
            items=[user(f"m{n}") for n in range(7)],
            include=["message.input_image.image_url"],
        )
        assert isinstance(added, ConversationItemList) and len(added.data) == 7
        ids = [item.id for item in added.data]
        assert (added.first_id, added.last_id) == (ids[0], ids[-1])

        asc = [i.id async for i in client.conversations.items.list(made.id, limit=3, order="asc")]
        assert asc == ids
        page = await client.conversations.items.list(made.id, limit=3)  # desc by default
        assert [i.id for i in page.data] == ids[::-1][:3] and page.has_more
        nxt = await client.conversations.items.list(made.id, limit=3, after=page.data[-1].id)
        assert [i.id for i in nxt.data] == ids[::-1][3:6]
        with pytest.raises(openai.BadRequestError) as bad:
            await client.conversations.items.list(made.id, limit=101)
        assert bad.value.body["param"] == "limit"  # type: ignore[index]

        after_delete = await client.conversations.items.delete(ids[2], conversation_id=made.id)
        assert isinstance(after_delete, Conversation) and after_delete.id == made.id
        with pytest.raises(openai.NotFoundError):
            await client.conversations.items.retrieve(ids[2], conversation_id=made.id)
        with pytest.raises(openai.NotFoundError):
            await client.conversations.items.delete(ids[2], conversation_id=made.id)
        left = [i.id async for i in client.conversations.items.list(made.id, order="asc")]
        assert left == ids[:2] + ids[3:]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"metadata": {f"k{n}": "v" for n in range(17)}}, "metadata"),
        ({"metadata": {"k" * 65: "v"}}, "metadata"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
        ({"metadata": {"k": 1}}, "metadata"),
        ({"items": "hello"}, "items"),
        ({"items": [{"type": "message", "role": "user", "content": 5}]}, "items[0].content"),
        ({"items": [user(str(n)) for n in range(21)]}, "items"),
    ],
    ids=["17 keys", "65-char key", "513-char value", "int value", "items str", "bad item", "21"],
)
async def test_bad_input_is_an_openai_error_naming_the_param(
    tmp_path: Path, body: dict[str, Any], param: str
) -> None:
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridge(tmp_path, upstream) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        answer = await http.post("/conversations", json=body)
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["type"] == "invalid_request_error" and error["param"] == param
        made = (await http.post("/conversations", json={})).json()
        if "metadata" in body:
            answer = await http.post(f"/conversations/{made['id']}", json=body)
        else:
            answer = await http.post(f"/conversations/{made['id']}/items", json=body)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param
        assert (await http.get(f"/conversations/{made['id']}/items")).json()["data"] == []


async def test_a_turn_continues_the_conversation_and_appends_its_items_with_shared_ids(
    tmp_path: Path,
) -> None:
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridge(tmp_path, upstream) as url,
        sdk(url) as client,
    ):
        made = await client.conversations.create(items=[user("My name is Ada.")])
        first = await client.responses.create(
            model="m", input="What is my name?", conversation=made.id
        )
        second = await client.responses.create(
            model="m", input=[user("And again?")], conversation={"id": made.id}, stream=False
        )
        assert first.conversation is not None and first.conversation.id == made.id
        SdkResponse.model_validate(first.model_dump())
        sent = [m["content"] for m in upstream.requests[1].json["messages"]]
        assert sent == [
            "My name is Ada.",
            "What is my name?",
            "echo: What is my name?",
            "And again?",
        ]

        items = [i async for i in client.conversations.items.list(made.id, order="asc")]
        assert [(i.type, getattr(i, "role", None)) for i in items] == [
            ("message", "user"),
            ("message", "user"),
            ("message", "assistant"),
            ("message", "user"),
            ("message", "assistant"),
        ]
        assert items[2].id == first.output[0].id and items[4].id == second.output[0].id
        inputs = await client.responses.input_items.list(second.id)
        assert [i.id for i in inputs.data] == [items[3].id]  # the same ids in both places

        # An item_reference may name a conversation's item.
        ref = await client.responses.create(
            model="m", input=[{"type": "item_reference", "id": items[0].id}]
        )
        assert upstream.requests[-1].json["messages"][-1]["content"] == "My name is Ada."
        assert ref.conversation is None


async def test_store_false_still_appends_and_unknown_conversations_are_400s(
    tmp_path: Path,
) -> None:
    upstream_script: list[Reply] = [Reply(text_body(["ok"])), Reply(status=400, body=b"{}")]
    async with (
        ScriptedUpstream(upstream_script, default=echo) as upstream,
        bridge(tmp_path, upstream) as url,
        sdk(url) as client,
    ):
        made = await client.conversations.create()
        kept = await client.responses.create(
            model="m", input="not stored", conversation=made.id, store=False
        )
        assert kept.store is False
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(kept.id)
        with pytest.raises(openai.APIStatusError):  # a failed turn appends nothing
            await client.responses.create(model="m", input="fails", conversation=made.id)
        items = [i async for i in client.conversations.items.list(made.id, order="asc")]
        assert [i.content[0].text for i in items] == ["not stored", "ok"]  # type: ignore[union-attr]

        with pytest.raises(openai.BadRequestError) as unknown:
            await client.responses.create(model="m", input="x", conversation="conv_nope")
        assert unknown.value.body["param"] == "conversation"  # type: ignore[index]
        assert "conv_nope" in unknown.value.body["message"]  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as both:
            await client.responses.create(
                model="m", input="x", conversation=made.id, previous_response_id=kept.id
            )
        assert both.value.code == "mutually_exclusive_parameters"


async def test_another_tenants_conversation_answers_as_an_unknown_id(tmp_path: Path) -> None:
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridge(tmp_path, upstream, keys=frozenset({ALICE, BOB})) as url,
        sdk(url, ALICE) as alice,
        sdk(url, BOB) as bob,
    ):
        made = await alice.conversations.create(items=[user("secret")])
        item = (await alice.conversations.items.list(made.id)).data[0]
        unknown = "conv_" + "0" * 48
        answers = {}
        for name, conv in (("theirs", made.id), ("unknown", unknown)):
            seen = []
            for call in (
                bob.conversations.retrieve(conv),
                bob.conversations.update(conv, metadata={}),
                bob.conversations.items.list(conv),
                bob.conversations.items.create(conv, items=[user("x")]),
                bob.conversations.items.retrieve(item.id, conversation_id=conv),
                bob.conversations.items.delete(item.id, conversation_id=conv),
                bob.conversations.delete(conv),
            ):
                with pytest.raises(openai.NotFoundError) as error:
                    await call
                seen.append(str(error.value.body).replace(conv, "ID"))
            with pytest.raises(openai.BadRequestError) as turn:
                await bob.responses.create(model="m", input="x", conversation=conv)
            seen.append(str(turn.value.body).replace(conv, "ID"))
            answers[name] = seen
        assert answers["theirs"] == answers["unknown"]
        with pytest.raises(openai.BadRequestError):
            await bob.responses.create(model="m", input=[{"type": "item_reference", "id": item.id}])
        assert len((await alice.conversations.items.list(made.id)).data) == 1


async def test_a_conversation_expires_its_ttl_after_its_last_use(tmp_path: Path) -> None:
    clock = Clock()
    async with (
        ScriptedUpstream(default=echo) as upstream,
        bridge(tmp_path, upstream, clock=clock) as url,
        sdk(url) as client,
    ):
        idle = await client.conversations.create(items=[user("a")])
        used = await client.conversations.create(items=[user("b")])
        clock.now = T0 + 3000
        await client.responses.create(model="m", input="still here?", conversation=used.id)
        clock.now = T0 + 3600
        with pytest.raises(openai.NotFoundError):
            await client.conversations.retrieve(idle.id)
        assert len((await client.conversations.items.list(used.id)).data) == 3
        clock.now = T0 + 3000 + 3600
        with pytest.raises(openai.NotFoundError):
            await client.conversations.retrieve(used.id)


async def test_two_concurrent_turns_on_one_conversation_append_whole_in_commit_order(
    tmp_path: Path, store_url: str
) -> None:
    """Turn A starts and is held at the upstream; turn B starts after it and finishes first.
    Neither sees the other's items (each read the conversation when it started); the
    conversation then holds B's input and output, then A's: each turn whole, nothing lost."""
    release_a = asyncio.Event()
    arrived: dict[str, asyncio.Event] = {"A": asyncio.Event(), "B": asyncio.Event()}

    def script(request: SeenRequest) -> Reply:
        last = request.json["messages"][-1]["content"]
        arrived[last].set()
        if last == "A":
            return Reply(text_body(["answer A"]), hold=release_a)
        return Reply(text_body(["answer B"]))

    async with (
        ScriptedUpstream(default=script) as upstream,
        bridge(tmp_path, upstream, store_url=store_url) as url,
        sdk(url) as client,
    ):
        made = await client.conversations.create(items=[user("before")])
        turn_a = asyncio.create_task(
            client.responses.create(model="m", input="A", conversation=made.id)
        )
        await arrived["A"].wait()
        b = await client.responses.create(model="m", input="B", conversation=made.id)
        release_a.set()
        a = await turn_a

        sent = {r.json["messages"][-1]["content"]: r.json["messages"] for r in upstream.requests}
        assert [m["content"] for m in sent["A"]] == ["before", "A"]
        assert [m["content"] for m in sent["B"]] == ["before", "B"]
        items = [i async for i in client.conversations.items.list(made.id, order="asc")]
        texts = [i.content[0].text for i in items]  # type: ignore[union-attr]
        assert texts == ["before", "B", "answer B", "A", "answer A"]
        assert [items[2].id, items[4].id] == [b.output[0].id, a.output[0].id]


async def test_a_turn_that_fails_after_its_answer_began_appends_nothing(tmp_path: Path) -> None:
    # The text arrives, then the connection drops before the finish: `response.failed`.
    body = text_body(["a partial answer"], done=False)
    end = body.rindex(b"data:")
    cut = Reply(body, disconnect_after=end)
    async with (
        ScriptedUpstream([cut], default=echo) as upstream,
        bridge(tmp_path, upstream) as url,
        sdk(url) as client,
    ):
        made = await client.conversations.create(items=[user("before")])
        stream = await client.responses.create(
            model="m", input="cut me", conversation=made.id, stream=True
        )
        events = [event.type async for event in stream]
        assert events[-1] == "response.failed"
        items = [i async for i in client.conversations.items.list(made.id, order="asc")]
        assert [i.content[0].text for i in items] == ["before"]  # type: ignore[union-attr]
        again = await client.responses.create(model="m", input="again", conversation=made.id)
        assert again.output_text == "echo: again"
        assert [m["content"] for m in upstream.requests[-1].json["messages"]] == ["before", "again"]
