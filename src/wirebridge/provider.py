"""Provider options and configuration loading, read in one place.

A `Provider` carries the keys of a Codex `[model_providers.NAME]` table, so the provider section
of an old Codex config can be pasted as is, plus the quirk switches that the seed hard-coded
(developer role, reasoning field, usage, inline think tags). Every provider quirk is a named
option here; no other module decides by provider name.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError
from .home import wirebridge_home

DEFAULT_REQUEST_MAX_RETRIES = 4
DEFAULT_STREAM_MAX_RETRIES = 5
DEFAULT_STREAM_IDLE_TIMEOUT_MS = 300_000
# Deadlines and limits of one turn (docs/server.md, "Operations"); 0 turns each off.
DEFAULT_STREAM_NO_CONTENT_TIMEOUT_MS = 600_000  # comments alone (keep-alives) for this long
DEFAULT_TURN_TIMEOUT_MS = 1_800_000  # the whole turn: retries, waits, prefill and generation
DEFAULT_STREAM_MAX_EVENT_BYTES = 8 * 1024 * 1024  # one SSE line or event, or a whole JSON answer
MAX_RETRIES_CAP = 100  # as Codex caps both retry counts

DeveloperRole = Literal["system", "developer"]
ReasoningField = Literal["reasoning", "reasoning_content", "none"]
ThinkTags = Literal["off", "on", "preopened"]

_CHOICES: dict[str, tuple[str, ...]] = {
    "developer_role": ("system", "developer"),
    "reasoning_field": ("reasoning", "reasoning_content", "none"),
    "think_tags": ("off", "on", "preopened"),
}
TOKENIZERS = ("llamacpp", "vllm")
_NON_NEGATIVE = (
    "request_max_retries",
    "stream_max_retries",
    "stream_idle_timeout_ms",
    "stream_no_content_timeout_ms",
    "turn_timeout_ms",
    "stream_max_event_bytes",
)
# Keys of Codex's provider tables that have no meaning for a Chat Completions bridge.
_CODEX_KEYS_IGNORED = frozenset(
    {"wire_api", "requires_openai_auth", "supports_websockets", "websocket_connect_timeout_ms"}
)


@dataclass(frozen=True, slots=True)
class Provider:
    """One Chat Completions upstream and its quirks."""

    name: str = "local"
    base_url: str = "http://localhost:11434/v1"
    env_key: str | None = None
    env_key_instructions: str | None = None
    experimental_bearer_token: str | None = field(default=None, repr=False)
    query_params: dict[str, str] | None = None
    http_headers: dict[str, str] | None = None
    env_http_headers: dict[str, str] | None = None
    request_max_retries: int = DEFAULT_REQUEST_MAX_RETRIES
    stream_max_retries: int = DEFAULT_STREAM_MAX_RETRIES
    stream_idle_timeout_ms: int = DEFAULT_STREAM_IDLE_TIMEOUT_MS
    stream_no_content_timeout_ms: int = DEFAULT_STREAM_NO_CONTENT_TIMEOUT_MS
    turn_timeout_ms: int = DEFAULT_TURN_TIMEOUT_MS
    stream_max_event_bytes: int = DEFAULT_STREAM_MAX_EVENT_BYTES
    developer_role: DeveloperRole = "system"
    reasoning_field: ReasoningField = "reasoning"
    include_usage: bool = True
    think_tags: ThinkTags = "off"
    # Forward the client's `prompt_cache_key` (Codex: the thread id), for upstreams that take it
    # as a prefix-cache routing hint (OpenAI, Azure OpenAI); others may reject the field.
    prompt_cache_key: bool = False
    # How `POST /v1/responses/input_tokens` counts exactly: the server's own template and
    # tokenizer, 'llamacpp' (/apply-template + /tokenize) or 'vllm' (/tokenize); None: no count.
    tokenize: str | None = None
    # Otherwise an estimate, said to be one: a Hugging Face `tokenizer.json` (or a model folder
    # holding one) that counts the prepared messages and tools without the chat template.
    estimate_tokenizer: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigError(
                f"provider {self.name!r}: base_url must be an http(s) URL, got {self.base_url!r}"
            )
        for key in _NON_NEGATIVE:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"provider {self.name!r}: {key} must be a non-negative integer, got {value!r}"
                )
        for key in ("request_max_retries", "stream_max_retries"):
            object.__setattr__(self, key, min(getattr(self, key), MAX_RETRIES_CAP))
        for key, allowed in _CHOICES.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(
                    f"provider {self.name!r}: {key} must be one of {', '.join(allowed)}; "
                    f"got {getattr(self, key)!r}"
                )
        if self.tokenize not in (None, *TOKENIZERS):
            raise ConfigError(
                f"provider {self.name!r}: tokenize must be one of {', '.join(TOKENIZERS)}; "
                f"got {self.tokenize!r}"
            )
        if self.estimate_tokenizer is not None:
            if not isinstance(self.estimate_tokenizer, str) or not self.estimate_tokenizer.strip():
                raise ConfigError(
                    f"provider {self.name!r}: estimate_tokenizer must be the path of a "
                    f"tokenizer.json or of a folder holding one; got {self.estimate_tokenizer!r}"
                )
            if self.tokenize is not None:  # one way to count, so a count says which it is
                raise ConfigError(
                    f"provider {self.name!r}: tokenize and estimate_tokenizer are exclusive: "
                    "an exact count needs no estimate"
                )
        for key in ("query_params", "http_headers", "env_http_headers"):
            value = getattr(self, key)
            if value is not None and (
                not isinstance(value, Mapping)
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
            ):
                raise ConfigError(f"provider {self.name!r}: {key} must be a table of strings")

    @property
    def chat_url(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    def api_key(self) -> str | None:
        """The bearer key, read from the environment at call time; never stored or logged."""
        if self.env_key:
            value = os.environ.get(self.env_key, "")
            if not value.strip():
                hint = f" {self.env_key_instructions}" if self.env_key_instructions else ""
                raise ConfigError(
                    f"provider {self.name!r} needs an API key: environment variable "
                    f"{self.env_key} is missing or empty.{hint}"
                )
            return value.strip()
        return self.experimental_bearer_token

    def headers(self) -> dict[str, str]:
        """Static and environment-sourced headers (Codex's `http_headers`, `env_http_headers`)."""
        out = dict(self.http_headers or {})
        for header, var in (self.env_http_headers or {}).items():
            value = os.environ.get(var)
            if value:
                out[header] = value
        return out

    def with_options(self, **changes: Any) -> Provider:
        return replace(self, **changes)

    @classmethod
    def from_table(cls, key: str, table: Mapping[str, Any]) -> Provider:
        """A `[model_providers.KEY]` table -> Provider; unknown keys are a ConfigError."""
        known = {f.name for f in fields(cls)}
        unknown = set(table) - known - _CODEX_KEYS_IGNORED
        if unknown:
            raise ConfigError(
                f"provider {key!r}: unknown key(s) {', '.join(sorted(unknown))}; "
                f"known keys are {', '.join(sorted(known))}"
            )
        values = {k: v for k, v in table.items() if k in known}
        values.setdefault("name", key)
        if "base_url" not in values:
            raise ConfigError(f"provider {key!r}: base_url is required")
        try:
            return cls(**values)
        except TypeError as exc:  # pragma: no cover - guarded by the key check above
            raise ConfigError(f"provider {key!r}: {exc}") from exc


BUILTIN_PROVIDERS: dict[str, Provider] = {
    "ollama": Provider(name="ollama", base_url="http://localhost:11434/v1"),
    "lmstudio": Provider(name="lmstudio", base_url="http://localhost:1234/v1"),
    "vllm": Provider(name="vllm", base_url="http://localhost:8000/v1"),
    "llamacpp": Provider(name="llamacpp", base_url="http://localhost:8080/v1"),
    "openai": Provider(
        name="openai",
        base_url="https://api.openai.com/v1",
        env_key="OPENAI_API_KEY",
        env_key_instructions="Create a key at https://platform.openai.com/api-keys",
        developer_role="developer",
        prompt_cache_key=True,
    ),
    "openrouter": Provider(
        name="openrouter",
        base_url="https://openrouter.ai/api/v1",
        env_key="OPENROUTER_API_KEY",
        env_key_instructions="Create a key at https://openrouter.ai/keys",
    ),
    "deepseek": Provider(
        name="deepseek",
        base_url="https://api.deepseek.com/v1",
        env_key="DEEPSEEK_API_KEY",
        env_key_instructions="Create a key at https://platform.deepseek.com/api_keys",
        reasoning_field="reasoning_content",  # DeepSeek answers 400 without it on tool turns
    ),
}


@dataclass(frozen=True, slots=True)
class Route:
    """A requested model name -> the provider and upstream model that serve it."""

    provider: str
    model: str | None = None  # None: the requested name passes through unchanged


@dataclass(frozen=True, slots=True)
class Config:
    providers: dict[str, Provider]
    default_provider: str = "ollama"
    default_model: str | None = None
    routes: dict[str, Route] = field(default_factory=dict)
    path: Path | None = None

    def provider(self, key: str) -> Provider:
        try:
            return self.providers[key]
        except KeyError:
            known = ", ".join(sorted(self.providers))
            raise ConfigError(f"unknown provider {key!r}; known providers: {known}") from None

    def route(self, requested_model: str) -> tuple[Provider, str]:
        """Which provider serves `requested_model`, and the model name to send upstream."""
        route = self.routes.get(requested_model)
        if route is None:
            return self.provider(self.default_provider), requested_model
        return self.provider(route.provider), route.model or requested_model


def default_config_path() -> Path:
    return wirebridge_home() / "config.toml"


def parse_config(data: Mapping[str, Any], path: Path | None = None) -> Config:
    """A parsed TOML document -> Config (built-ins overlaid by the file's providers)."""
    where = f" in {path}" if path else ""
    providers = dict(BUILTIN_PROVIDERS)
    tables = data.get("model_providers", {})
    if not isinstance(tables, Mapping):
        raise ConfigError(f"model_providers must be a table{where}")
    for key, table in tables.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"model_providers.{key} must be a table{where}")
        providers[key] = Provider.from_table(key, table)
    routes: dict[str, Route] = {}
    models = data.get("models", {})
    if not isinstance(models, Mapping):
        raise ConfigError(f"models must be a table{where}")
    for name, table in models.items():
        if not isinstance(table, Mapping) or not isinstance(table.get("provider"), str):
            raise ConfigError(f'models.{name} needs a provider = "NAME"{where}')
        if table["provider"] not in providers:
            raise ConfigError(f"models.{name}: unknown provider {table['provider']!r}{where}")
        upstream = table.get("model")
        if upstream is not None and not isinstance(upstream, str):
            raise ConfigError(f"models.{name}.model must be a string{where}")
        routes[name] = Route(table["provider"], upstream)
    default = data.get("model_provider", "ollama")
    if default not in providers:
        raise ConfigError(f"model_provider {default!r} is not a known provider{where}")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise ConfigError(f"model must be a string{where}")
    return Config(providers, default, model, routes, path)


def load_config(path: str | Path | None = None) -> Config:
    """Load a Codex-style TOML config; a missing default file means built-ins only."""
    explicit = path is not None
    file = Path(path) if path is not None else default_config_path()
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        return parse_config({}, None)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: invalid TOML: {exc}") from exc
    return parse_config(data, file)
