"""Failures mapped to the OpenAI error shape (before streaming) and `response.failed` codes."""

from __future__ import annotations

import json

import pytest

from wirebridge.errors import (
    ConfigError,
    IdleTimeoutError,
    InputError,
    ProviderError,
    RetryLimitError,
    StreamError,
    UnexpectedStatusError,
    UpstreamUnreachableError,
)
from wirebridge.responses.errors import ApiError, map_exception


def test_error_body_is_the_openai_shape() -> None:
    error = ApiError(400, "bad", param="temperature", code="invalid_type")
    assert json.loads(error.encode()) == {
        "error": {
            "message": "bad",
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "invalid_type",
        }
    }


def test_rate_limit_keeps_retry_after_and_says_when() -> None:
    error = map_exception(RetryLimitError(429, body="slow down", retry_after=7.2))
    assert (error.status, error.code, error.failed_code) == (
        429,
        "rate_limit_exceeded",
        "rate_limit_exceeded",
    )
    assert error.headers == {"Retry-After": "8", "x-should-retry": "false"}
    assert "try again in 7.2s" in error.message  # the phrase Codex reads its wait from


def test_rate_limit_without_a_wait_sends_no_retry_after() -> None:
    assert map_exception(RetryLimitError(429)).headers == {"x-should-retry": "false"}


def test_unreachable_upstream_is_502_naming_its_url() -> None:
    error = map_exception(
        UpstreamUnreachableError("http://127.0.0.1:9/v1/chat/completions", "refused")
    )
    assert error.status == 502
    assert "http://127.0.0.1:9/v1/chat/completions" in error.message
    assert error.code == "upstream_unreachable" and error.failed_code == "upstream_unreachable"


def test_upstream_5xx_after_retries_keeps_its_status() -> None:
    assert map_exception(RetryLimitError(503, body="busy")).status == 503
    assert map_exception(RetryLimitError(None)).status == 502


@pytest.mark.parametrize(
    "body",
    [
        '{"error":{"message":"This model\'s maximum context length is 8192 tokens","code":null}}',
        '{"error":{"message":"too long","code":"context_length_exceeded"}}',
        '{"error":"the request exceeds the available context size, try increasing it"}',
        "prompt is too long: 40000 tokens > 32768",
    ],
)
def test_context_overflow_is_context_length_exceeded(body: str) -> None:
    error = map_exception(UnexpectedStatusError(400, body))
    assert (error.status, error.code, error.failed_code) == (
        400,
        "context_length_exceeded",
        "context_length_exceeded",
    )


def test_other_client_errors_pass_through_with_the_upstream_message() -> None:
    error = map_exception(UnexpectedStatusError(404, '{"error":{"message":"model x not found"}}'))
    assert error.status == 404
    assert "model x not found" in error.message and "HTTP 404" in error.message


def test_upstream_auth_failure_is_not_the_clients_401() -> None:
    error = map_exception(UnexpectedStatusError(401, '{"error":{"message":"bad key"}}'))
    assert error.status == 502 and error.code == "upstream_auth"


def test_stream_failures_are_gateway_errors() -> None:
    assert map_exception(IdleTimeoutError("no data for 5 ms")).status == 504
    assert map_exception(StreamError("cut")).status == 502


def test_provider_error_codes_map() -> None:
    overflow = map_exception(ProviderError("context window exceeded", "400"))
    assert overflow.failed_code == "context_length_exceeded"
    limited = map_exception(ProviderError("Rate limit reached", "rate_limit_exceeded"))
    assert (limited.status, limited.failed_code) == (429, "rate_limit_exceeded")
    other = map_exception(ProviderError("boom", "overloaded"))
    assert (other.status, other.code, other.failed_code) == (502, "overloaded", "overloaded")


def test_input_error_is_400_with_its_param() -> None:
    error = map_exception(InputError("must be a non-empty string", field="tools[2].name"))
    assert (error.status, error.param) == (400, "tools[2].name")


def test_config_error_is_500_and_names_the_variable_not_a_key() -> None:
    error = map_exception(ConfigError("environment variable DEEPSEEK_API_KEY is missing"))
    assert error.status == 500 and "DEEPSEEK_API_KEY" in error.message


def test_unexpected_exceptions_are_500_with_where() -> None:
    error = map_exception(RuntimeError("boom"), "http://up/v1/chat/completions")
    assert error.status == 500 and "http://up/v1/chat/completions" in error.message
