"""Settings of the OpenAI-compatible engine: command-line values, the config file's
`[openai]` table and the environment (the API key), and the HTTP client they make."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ponder.engines._http import RemoteClient, RetryPolicy, Timeouts, normalize_base_url
from ponder.errors import InputError
from ponder.thinking import ThinkingStyle

DEFAULT_KEY_ENV = "PONDER_API_KEY"


@dataclass(frozen=True)
class OpenAISettings:
    """How to reach and use one server. The key itself is never shown (repr=False)."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None
    model: str | None = None
    mode: Literal["auto", "completions", "chat"] = "auto"
    chat_template: str | None = None
    context_length: int | None = None
    thinking: ThinkingStyle | None = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_connections: int = 8
    extra_sampling: bool = True
    server_n: bool | None = None
    logprobs: bool | None = None
    always_logprobs: bool = False


def _table(config: Mapping[str, Any]) -> Mapping[str, Any]:
    table = config.get("openai", {})
    if not isinstance(table, Mapping):
        raise InputError("the config file's [openai] entry must be a table")
    return table


def resolve_api_key(env_name: str | None, config: Mapping[str, Any]) -> tuple[str | None,
                                                                              str | None]:
    """(key, the variable it came from): --api-key-env, the config file, or $PONDER_API_KEY."""
    env_name = env_name or config.get("api_key_env") or None
    if env_name:
        value = os.environ.get(str(env_name))
        if not value:
            raise InputError(f"the environment variable {env_name} (from --api-key-env) is "
                             "not set or empty", f"export {env_name}=... first")
        return value, str(env_name)
    key = _table(config).get("api_key") or config.get("api_key")
    if key:
        return str(key), None
    return os.environ.get(DEFAULT_KEY_ENV) or None, DEFAULT_KEY_ENV


def _number(table: Mapping[str, Any], key: str, default: float) -> float:
    value = table.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
        raise InputError(f"config [openai] {key} must be a positive number")
    return float(value)


def _whole(table: Mapping[str, Any], key: str, default: int, least: int) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise InputError(f"config [openai] {key} must be a whole number of at least {least}")
    return value


def settings_from(
    base_url: str | None,
    api_key_env: str | None,
    config: Mapping[str, Any],
    *,
    model: str | None = None,
    context_length: int | None = None,
) -> OpenAISettings:
    """Settings from command-line values, falling back on the config file."""
    table = _table(config)
    url = base_url or table.get("base_url") or config.get("base_url")
    if not url:
        raise InputError("--engine openai needs a server URL",
                         "pass --base-url http://HOST:PORT/v1 or set base_url in the config")
    key, key_env = resolve_api_key(api_key_env, config)
    retry = RetryPolicy(attempts=_whole(table, "retries", 3, 0) + 1)
    timeouts = Timeouts(_number(table, "connect_timeout", 5.0),
                        _number(table, "read_timeout", 300.0))
    mode = table.get("mode", "auto")
    if mode not in ("auto", "completions", "chat"):
        raise InputError("config [openai] mode must be auto, completions or chat")
    thinking = table.get("thinking")
    if thinking not in (None, "native", "prompted"):
        raise InputError("config [openai] thinking must be native or prompted")
    ctx = table.get("context_length", context_length)
    return OpenAISettings(
        base_url=normalize_base_url(str(url)), api_key=key, api_key_env=key_env,
        model=model or table.get("model"), mode=mode, chat_template=table.get("chat_template"),
        context_length=int(ctx) if ctx else None, thinking=thinking, timeouts=timeouts,
        retry=retry, max_connections=_whole(table, "max_connections", 8, 1),
        extra_sampling=bool(table.get("extra_sampling", True)),
        server_n=table.get("server_n"), logprobs=table.get("logprobs"),
        always_logprobs=bool(table.get("always_logprobs", False)),
    )


def make_client(settings: OpenAISettings) -> RemoteClient:
    return RemoteClient(settings.base_url, settings.api_key, api_key_env=settings.api_key_env,
                        timeouts=settings.timeouts, retry=settings.retry,
                        max_connections=settings.max_connections)


def model_ids(payload: Any) -> list[str]:
    data = payload.get("data") if isinstance(payload, dict) else payload
    if not isinstance(data, list):
        return []
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


def list_remote_models(base_url: str | None, api_key_env: str | None) -> list[str]:
    """The model ids a server offers (`GET /v1/models`); the URL may come from the config."""
    from ponder.config import load_config

    settings = settings_from(base_url, api_key_env, load_config())
    client = make_client(settings)
    try:
        return model_ids(client.get_json("/models"))
    finally:
        client.close()
