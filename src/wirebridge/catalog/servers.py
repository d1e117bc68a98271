"""Probe answers -> what a model server says about its models. Pure: parsed JSON in, facts out.

Each server kind documents its window somewhere else:
- llama.cpp `GET /props`: `default_generation_settings.n_ctx` (a slot's window), `modalities`;
- vLLM `GET /v1/models`: `max_model_len` on each model;
- Ollama `POST /api/show`: `model_info["<arch>.context_length"]`, overridden by a `num_ctx`
  parameter when one is set (that is the window Ollama really serves), and `capabilities`;
- LM Studio `GET /api/v0/models`: `loaded_context_length` (when loaded) or
  `max_context_length`, and `type` ("vlm" reads images).
Anything else lists ids only (`GET /v1/models`), and the window must come from the user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

# Window keys some OpenAI-style lists carry on each model (vLLM, OpenRouter, others).
_LIST_WINDOW_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length")


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """One model as a server describes it; `None` is "the server did not say"."""

    id: str
    context_window: int | None = None
    reasoning: bool | None = None
    images: bool | None = None
    source: str = "list"  # where the window came from: "llama.cpp n_ctx", "--context-window"...

    def merged(self, other: ModelFacts) -> ModelFacts:
        """These facts, with what `other` knows filled in where these know nothing."""
        return replace(
            self,
            context_window=self.context_window or other.context_window,
            reasoning=self.reasoning if self.reasoning is not None else other.reasoning,
            images=self.images if self.images is not None else other.images,
            source=self.source if self.context_window else other.source,
        )


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return int(value)


def _listed(body: Any, list_key: str, id_key: str) -> list[tuple[str, Mapping[str, Any]]]:
    """`body[list_key]`'s entries that carry a string `id_key`, with that id; every list-shaped
    answer (OpenAI, LM Studio, a bridge's catalog) is read past the same malformed entries."""
    entries = body.get(list_key) if isinstance(body, Mapping) else None
    if not isinstance(entries, list):
        return []
    return [
        (entry[id_key], entry)
        for entry in entries
        if isinstance(entry, Mapping) and isinstance(entry.get(id_key), str)
    ]


def parse_model_list(body: Any) -> list[ModelFacts]:
    """`GET /v1/models` (OpenAI shape) -> one fact per listed id, with a window if one is given."""
    out: list[ModelFacts] = []
    for model_id, entry in _listed(body, "data", "id"):
        window, source = None, "list"
        for key in _LIST_WINDOW_KEYS:
            window = _positive_int(entry.get(key))
            if window is not None:
                source = f"{key} (model list)"
                break
        out.append(ModelFacts(model_id, window, source=source))
    return out


def parse_llamacpp_props(body: Any) -> tuple[int | None, bool | None]:
    """llama.cpp `GET /props` -> (a slot's n_ctx, whether it reads images); router mode's 0 is
    no answer."""
    if not isinstance(body, Mapping):
        return None, None
    settings = body.get("default_generation_settings")
    window = _positive_int(settings.get("n_ctx")) if isinstance(settings, Mapping) else None
    if window is None:
        window = _positive_int(body.get("n_ctx"))
    modalities = body.get("modalities")
    images = modalities.get("vision") if isinstance(modalities, Mapping) else None
    return window, images if isinstance(images, bool) else None


def _num_ctx(parameters: Any) -> int | None:
    """`num_ctx` from Ollama's `parameters` text (one `name value` per line)."""
    if not isinstance(parameters, str):
        return None
    for line in parameters.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "num_ctx" and parts[1].isdigit():
            return _positive_int(int(parts[1]))
    return None


def parse_ollama_show(model: str, body: Any) -> ModelFacts | None:
    """Ollama `POST /api/show` -> the model's facts; `num_ctx` wins over the trained length."""
    if not isinstance(body, Mapping):
        return None
    info = body.get("model_info")
    trained = None
    if isinstance(info, Mapping):
        trained = next(
            (
                _positive_int(v)
                for k, v in info.items()
                if isinstance(k, str) and k.endswith(".context_length")
            ),
            None,
        )
    num_ctx = _num_ctx(body.get("parameters"))
    capabilities = body.get("capabilities")
    caps = set(capabilities) if isinstance(capabilities, list) else None
    if num_ctx is None and trained is None and caps is None:
        return None
    return ModelFacts(
        model,
        num_ctx or trained,
        reasoning=None if caps is None else "thinking" in caps,
        images=None if caps is None else "vision" in caps,
        source="Ollama num_ctx" if num_ctx else "Ollama context_length",
    )


def parse_lmstudio_models(body: Any) -> list[ModelFacts]:
    """LM Studio `GET /api/v0/models` -> facts of its language models (embedders left out)."""
    out: list[ModelFacts] = []
    for model_id, entry in _listed(body, "data", "id"):
        kind = entry.get("type")
        if kind == "embeddings":
            continue
        loaded = _positive_int(entry.get("loaded_context_length"))
        window = loaded or _positive_int(entry.get("max_context_length"))
        key = "loaded_context_length" if loaded else "max_context_length"
        out.append(
            ModelFacts(
                model_id,
                window,
                images=(kind == "vlm") if isinstance(kind, str) else None,
                source=f"LM Studio {key}",
            )
        )
    return out


def parse_doctor_json(body: Any) -> ModelFacts | None:
    """`wirebridge doctor --json` -> what it found about the model: whether reasoning arrived.

    Doctor does not probe images, so `images` stays unknown; a run that reached nothing says
    nothing."""
    if not isinstance(body, Mapping) or not isinstance(body.get("model"), str):
        return None
    if body.get("reachable") is False:
        return None
    findings = body.get("findings")
    reasoning = findings.get("reasoning") if isinstance(findings, Mapping) else None
    seen: bool | None = None
    if isinstance(reasoning, Mapping) and reasoning.get("status") in ("ok", "info"):
        value = reasoning.get("value")
        if isinstance(value, Mapping):
            fields = value.get("fields")
            seen = bool(fields) or value.get("think_tags") in ("on", "preopened")
    return ModelFacts(body["model"], reasoning=seen, source="wirebridge doctor")


def parse_codex_catalog(body: Any) -> list[ModelFacts]:
    """A bridge's served catalog (`GET /v1/models?client_version=`) -> the facts it carries."""
    out: list[ModelFacts] = []
    for slug, entry in _listed(body, "models", "slug"):
        modalities = entry.get("input_modalities")
        out.append(
            ModelFacts(
                slug,
                _positive_int(entry.get("context_window")),
                reasoning=bool(entry.get("supported_reasoning_levels")),
                images=isinstance(modalities, list) and "image" in modalities,
                source="the bridge's catalog",
            )
        )
    return out
