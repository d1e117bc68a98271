"""Scripts that make a `ScriptedUpstream` answer like a given model server's model endpoints.

Each kind answers the documented shapes of its server, and nothing more: llama.cpp (`/v1/models`
with `meta`, `GET /props`), vLLM (`/v1/models` with `max_model_len`), Ollama (`/v1/models`,
`POST /api/show` with `model_info` and `parameters`), LM Studio (`/v1/models`,
`GET /api/v0/models`), and a plain OpenAI-style server (the list only). Chat Completions
requests go to the `chat` reply or script; every other path is a 404, as on the real servers.

    ScriptedUpstream(default=model_server("ollama", [ServedModel("qwen3:8b", 16384)], chat))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .upstream import Reply, Script, SeenRequest

ServerKind = Literal["llama.cpp", "vllm", "ollama", "lmstudio", "openai"]
SERVER_KINDS: tuple[ServerKind, ...] = ("llama.cpp", "vllm", "ollama", "lmstudio", "openai")


@dataclass(frozen=True)
class ServedModel:
    """A model as its server is set up: the window it serves, the length it was trained for."""

    id: str
    context_window: int
    trained: int = 131_072  # a different number, so a probe that reads it is caught
    reasoning: bool = False
    images: bool = False
    num_ctx_set: bool = True  # Ollama: `num_ctx` in the model's parameters (else trained length)


def _json(body: Any, status: int = 200) -> Reply:
    return Reply(json.dumps(body).encode(), status=status, content_type="application/json")


def _not_found(request: SeenRequest) -> Reply:
    return _json({"error": {"message": f"{request.method} {request.path}: not found"}}, 404)


def _openai_list(models: Sequence[ServedModel], kind: ServerKind) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for m in models:
        entry: dict[str, Any] = {"id": m.id, "object": "model", "created": 1_700_000_000}
        if kind == "llama.cpp":
            entry["owned_by"] = "llamacpp"
            entry["meta"] = {"vocab_type": 2, "n_vocab": 151_936, "n_ctx_train": m.trained}
        elif kind == "vllm":
            entry |= {"owned_by": "vllm", "root": m.id, "parent": None}
            entry["max_model_len"] = m.context_window
        elif kind == "ollama":
            entry["owned_by"] = "library"
        else:
            entry["owned_by"] = "organization_owner"
        data.append(entry)
    return {"object": "list", "data": data}


def _llamacpp_props(model: ServedModel) -> dict[str, Any]:
    return {
        "default_generation_settings": {"n_ctx": model.context_window, "params": {}},
        "total_slots": 1,
        "model_alias": model.id,
        "model_path": f"/models/{model.id}.gguf",
        "modalities": {"vision": model.images, "video": False, "audio": False},
        "build_info": "b0000-scripted",
    }


def _ollama_show(model: ServedModel) -> dict[str, Any]:
    parameters = 'stop "<|im_end|>"'
    if model.num_ctx_set:
        parameters = f"num_ctx {model.context_window}\n{parameters}"
    capabilities = ["completion", "tools"]
    capabilities += ["thinking"] if model.reasoning else []
    capabilities += ["vision"] if model.images else []
    trained = model.trained if model.num_ctx_set else model.context_window
    return {
        "parameters": parameters,
        "details": {"format": "gguf", "family": "qwen3"},
        "model_info": {"general.architecture": "qwen3", "qwen3.context_length": trained},
        "capabilities": capabilities,
    }


def _lmstudio_models(models: Sequence[ServedModel]) -> dict[str, Any]:
    data = [
        {
            "id": m.id,
            "object": "model",
            "type": "vlm" if m.images else "llm",
            "publisher": "scripted",
            "arch": "qwen3",
            "state": "loaded",
            "max_context_length": m.context_window,
        }
        for m in models
    ]
    data.append({"id": "text-embedding-scripted", "object": "model", "type": "embeddings"})
    return {"object": "list", "data": data}


def model_server(kind: ServerKind, models: Sequence[ServedModel], chat: Reply | Script) -> Script:
    """A script answering like `kind` for `models`, and `chat` for Chat Completions."""
    by_id = {m.id: m for m in models}

    def answer(request: SeenRequest) -> Reply:
        path = request.path.split("?", 1)[0]
        if request.method == "POST" and path.endswith("/chat/completions"):
            return chat(request) if callable(chat) else chat
        if request.method == "GET" and path == "/v1/models":
            return _json(_openai_list(models, kind))
        if kind == "llama.cpp" and request.method == "GET" and path == "/props":
            return _json(_llamacpp_props(models[0]))
        if kind == "ollama" and request.method == "POST" and path == "/api/show":
            name = request.json.get("model") or request.json.get("name")
            if name not in by_id:
                return _json({"error": f"model '{name}' not found"}, 404)
            return _json(_ollama_show(by_id[name]))
        if kind == "lmstudio" and request.method == "GET" and path == "/api/v0/models":
            return _json(_lmstudio_models(models))
        return _not_found(request)

    return answer
