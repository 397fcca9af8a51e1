"""An engine for any server with the OpenAI completions / chat-completions API.

Two modes, chosen when the engine connects:

* **completions** (preferred): ponder renders the chat template itself and streams raw
  `/v1/completions`, so thinking can be capped (inject), sequences forked and broken
  streams resumed, all by continuing from a prefix. The template comes from the config
  (`[openai] chat_template`: Jinja text, or a .jinja/.gguf path), from the server
  (llama.cpp's `/props`), or from the GGUF file a llama-cpp-python server names as its
  model when that file is on this machine.
* **chat**: `/v1/chat/completions` with the server's own template. Continuing from a
  prefix is not possible there, so inject, fork and resumes are best effort (the prefix is
  sent as a trailing assistant message, which llama.cpp continues and other servers may
  answer anew), and a stream that breaks after tokens arrived is an error.

Extra attributes beyond the Engine protocol: ``supports_logprobs`` (the server returns
token log-probabilities; strategies needing them should check it and fall back),
``supports_continuation`` (completions mode), ``mode`` and ``style`` (the thinking style).
`start` may be called from several threads at once: each Generation has its own state and
the engine's caches are guarded by a lock.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from ponder.engines._ggufmeta import TemplateInfo, template_info
from ponder.engines._http import RemoteClient, RetryPolicy, Timeouts, normalize_base_url
from ponder.engines._openai_gen import OpenAIGeneration
from ponder.engines.base import Sampling
from ponder.errors import (
    ContextOverflowError,
    InputError,
    ModelNotFoundError,
    RemoteError,
)
from ponder.events import Message
from ponder.thinking import THINK_OPEN, ThinkingStyle

Mode = Literal["completions", "chat"]
DEFAULT_CONTEXT = 2048
DEFAULT_KEY_ENV = "PONDER_API_KEY"
CHAT_MARK = "\x1eponder-chat\x1e"
PROBE_TEXT = "Hello"


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


# -- settings from options, config and the environment ----------------------------------


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


def _model_ids(payload: Any) -> list[str]:
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
        return _model_ids(client.get_json("/models"))
    finally:
        client.close()


# -- prompts ------------------------------------------------------------------------------


def _raise(message: str) -> None:
    raise ValueError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


class JinjaTemplate:
    """A Hugging Face-style Jinja chat template, rendered here as transformers does."""

    def __init__(self, info: TemplateInfo) -> None:
        import jinja2
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        self.info = info
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                            extensions=[jinja2.ext.loopcontrols])
        env.filters["tojson"] = _tojson
        env.globals.update(raise_exception=_raise,
                           strftime_now=lambda fmt: datetime.now().strftime(fmt))
        try:
            self._template = env.from_string(info.template)
        except jinja2.TemplateError as exc:
            raise InputError(f"the chat template does not parse: {exc}") from None
        uses_bos = info.add_bos if info.add_bos is not None else "bos_token" in info.template
        self._strip = info.bos_token if uses_bos and info.bos_token else ""

    def render(self, messages: Sequence[Message]) -> str:
        try:
            prompt = self._template.render(
                messages=[dict(m) for m in messages], add_generation_prompt=True,
                bos_token=self.info.bos_token, eos_token=self.info.eos_token)
        except Exception as exc:  # jinja and raise_exception errors of every kind
            raise InputError(f"the chat template failed to render: {exc}") from None
        if self._strip and prompt.startswith(self._strip):
            prompt = prompt[len(self._strip):]  # the server adds BOS itself
        return prompt


def encode_chat(messages: Sequence[Message]) -> str:
    """Chat mode's 'rendered prompt': the messages, recoverable by `decode_chat`."""
    return CHAT_MARK + json.dumps([dict(m) for m in messages], ensure_ascii=False) + CHAT_MARK


def decode_chat(prompt: str) -> tuple[list[dict[str, str]], str]:
    """(messages, assistant prefix) of a chat-mode prompt; plain text is one user message."""
    if prompt.startswith(CHAT_MARK):
        end = prompt.find(CHAT_MARK, len(CHAT_MARK))
        if end > 0:
            messages = json.loads(prompt[len(CHAT_MARK):end])
            return messages, prompt[end + len(CHAT_MARK):]
    return [{"role": "user", "content": prompt}], ""


def _template_from_setting(value: str) -> TemplateInfo:
    path = Path(value).expanduser()
    if "{" not in value and path.suffix == ".gguf":
        info = template_info(path)
        if info is None:
            raise InputError(f"config [openai] chat_template: {path} has no chat template")
        return info
    if "{" not in value:
        try:
            value = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"cannot read chat template {path}: {exc.strerror}") from None
    return TemplateInfo(value, "", "")


def estimate_tokens(text: str) -> int:
    """A deliberately high estimate, for servers that cannot count tokens."""
    return math.ceil(len(text.encode("utf-8")) / 3)


# -- the engine ---------------------------------------------------------------------------


class OpenAIEngine:
    """A model on an OpenAI-compatible server; connects and inspects it on creation."""

    thread_safe = True  # `start` may be called from several threads at once

    def __init__(self, settings: OpenAISettings, client: RemoteClient | None = None) -> None:
        self.settings = settings
        self.client = client or make_client(settings)
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._tokenize: str | None = None
        self._tokenize_known = False
        self._logprobs = settings.logprobs
        self._server_n = settings.server_n
        try:
            self._connect()
        except BaseException:
            self.client.close()
            raise

    def _connect(self) -> None:
        self._listing = self.client.get_json("/models")
        self._models = _model_ids(self._listing)
        self._model = self._pick_model()
        self._props = self._get_props()
        self.template = self._find_template()
        if self.settings.mode == "completions" and self.template is None:
            raise InputError("config [openai] mode = completions needs a chat template",
                             "set [openai] chat_template to Jinja text or a .jinja/.gguf path")
        self.mode: Mode = "completions" if self.template is not None else "chat"
        self.supports_continuation = self.mode == "completions"
        self._context_length = self._find_context()
        self.style: ThinkingStyle = self.settings.thinking or self._guess_style()

    def _pick_model(self) -> str:
        wanted = self.settings.model
        if wanted is None:
            if not self._models:
                raise RemoteError(f"the server at {self.client.display_url} lists no models",
                                  "name one with --model")
            return self._models[0]
        if self._models and wanted not in self._models:
            raise ModelNotFoundError(
                f"the server at {self.client.display_url} has no model '{wanted}'",
                "it serves: " + ", ".join(self._models[:8]))
        return wanted

    def _get_props(self) -> dict[str, Any]:
        props = self.client.probe_json("GET", "/props")
        return props if isinstance(props, dict) else {}

    def _find_template(self) -> JinjaTemplate | None:
        if self.settings.mode == "chat":
            return None
        if self.settings.chat_template:
            return JinjaTemplate(_template_from_setting(self.settings.chat_template))
        served = self._props.get("chat_template")
        if isinstance(served, str) and served.strip():
            return JinjaTemplate(TemplateInfo(served, str(self._props.get("bos_token") or ""),
                                              str(self._props.get("eos_token") or "")))
        path = Path(self._model)
        if path.suffix == ".gguf" and path.is_file():
            info = template_info(path)
            if info is not None:
                return JinjaTemplate(info)
        return None

    def _find_context(self) -> int:
        settings = self._props.get("default_generation_settings")
        candidates: list[Any] = [self._props.get("n_ctx")]
        if isinstance(settings, dict):
            candidates.append(settings.get("n_ctx"))
        candidates += self._model_info_context()
        candidates.append(self.settings.context_length)
        for value in candidates:
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return DEFAULT_CONTEXT

    def _model_info_context(self) -> list[Any]:
        data = self._listing.get("data") if isinstance(self._listing, dict) else None
        for entry in data or []:
            if isinstance(entry, dict) and entry.get("id") == self._model:
                return [entry.get(k) for k in ("max_model_len", "context_length",
                                               "max_context_length", "context_window")]
        return []

    def _guess_style(self) -> ThinkingStyle:
        if self.template is not None and THINK_OPEN in self.template.info.template:
            return "native"
        return "prompted"

    # -- the Engine protocol --------------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def context_length(self) -> int:
        return self._context_length

    @property
    def capacity(self) -> int:
        """Requests run at once: the connections to the server."""
        return self.settings.max_connections

    def chat_prompt(self, messages: Sequence[Message]) -> str:
        if self.template is None:
            return encode_chat(messages)
        return self.template.render(messages)

    def count_tokens(self, text: str) -> int:
        if self.mode == "chat" and text.startswith(CHAT_MARK):
            messages, prefix = decode_chat(text)
            return sum(self._count(m["content"]) + 4 for m in messages) + self._count(prefix)
        return self._count(text)

    def _count(self, text: str) -> int:
        if not text:
            return 0
        route = self._tokenize_route()
        if route is not None:
            count = self._server_count(route, text)
            if count is not None:
                return count
        return estimate_tokens(text)

    def _tokenize_route(self) -> str | None:
        with self._lock:
            if not self._tokenize_known:
                self._tokenize = next((r for r in ("/extras/tokenize/count", "/tokenize")
                                       if self._server_count(r, "Hi") is not None), None)
                self._tokenize_known = True
            return self._tokenize

    def _server_count(self, route: str, text: str) -> int | None:
        body = {"input": text, "content": text, "prompt": text, "model": self._model,
                "add_special": False, "add_special_tokens": False}
        answer = self.client.probe_json("POST", route, body)
        if not isinstance(answer, dict):
            return None
        if isinstance(answer.get("count"), int):
            return int(answer["count"])
        tokens = answer.get("tokens")
        return len(tokens) if isinstance(tokens, list) else None

    @property
    def supports_logprobs(self) -> bool:
        """Whether the server returns token log-probabilities (probed once)."""
        with self._lock:
            if self._logprobs is None:
                self._logprobs = self._probe(n=1, logprobs=True) >= 1
            return self._logprobs

    def server_n(self) -> bool:
        """Whether the server samples `n` choices per request (probed once)."""
        with self._lock:
            if self._server_n is None:
                self._server_n = self._probe(n=2, logprobs=False) >= 2
            return self._server_n

    def _probe(self, *, n: int, logprobs: bool) -> int:
        """A one-token request: the number of choices (with logprobs, when asked) returned."""
        body = self.request_body(self.chat_prompt([{"role": "user", "content": PROBE_TEXT}]),
                                 "", Sampling(temperature=1.0, seed=0), max_tokens=1, n=n,
                                 logprobs=1 if logprobs else 0)
        body["stream"] = False
        try:
            answer = self.client.post_json(self.path, body)
        except RemoteError as exc:
            if "HTTP 4" in exc.message and "refused" not in exc.message:
                return 0
            raise
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not isinstance(choices, list):
            return 0
        if logprobs:
            return sum(1 for c in choices if isinstance(c, dict) and c.get("logprobs"))
        return len({c.get("index") for c in choices if isinstance(c, dict)})

    @property
    def path(self) -> str:
        return "/completions" if self.mode == "completions" else "/chat/completions"

    def request_body(self, prompt: str, text: str, sampling: Sampling, *, max_tokens: int,
                     n: int = 1, logprobs: int = 0, seed: int | None = None) -> dict[str, Any]:
        """The JSON of a streaming request continuing `prompt` + `text`."""
        body: dict[str, Any] = {
            "model": self._model, "max_tokens": max_tokens, "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": sampling.temperature, "top_p": sampling.top_p,
            "seed": sampling.seed if seed is None else seed,
        }
        if self.settings.extra_sampling:
            body.update(top_k=sampling.top_k, min_p=sampling.min_p)
        if sampling.stop:
            body["stop"] = list(sampling.stop[:4])
        if n > 1:
            body["n"] = n
        if self.mode == "completions":
            body["prompt"] = prompt + text
            if logprobs:
                body["logprobs"] = logprobs
        else:
            body["messages"] = self._messages(prompt, text)
            if logprobs:
                body.update(logprobs=True, top_logprobs=logprobs)
        return body

    def _messages(self, prompt: str, text: str) -> list[dict[str, str]]:
        messages, prefix = decode_chat(prompt)
        if prefix + text:
            messages.append({"role": "assistant", "content": prefix + text})
        return messages

    def start(self, prompt: str, sampling: Sampling, n: int = 1,
              budget: int | None = None) -> OpenAIGeneration:
        if n < 1:
            raise InputError(f"n must be at least 1, got {n}")
        if budget is not None and budget < 0:
            raise InputError(f"budget must not be negative, got {budget}")
        prompt_tokens = self.count_tokens(prompt)
        if prompt_tokens >= self._context_length:
            raise ContextOverflowError(
                f"prompt is {prompt_tokens} tokens; the context holds {self._context_length}")
        # Log-probabilities only when asked: some servers (llama-cpp-python) slow down ~8x.
        wants = sampling.top_logprobs > 0 or self.settings.always_logprobs
        logprobs = max(1, sampling.top_logprobs) if wants and self.supports_logprobs else 0
        together = n > 1 and self.server_n()
        return OpenAIGeneration(self, prompt, prompt_tokens, sampling, n, budget,
                                logprobs=logprobs, together=together)

    def submit(self, fn: Callable[[], None]) -> Future[None]:
        """Run `fn` on the engine's bounded pool of request threads."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.settings.max_connections,
                                                thread_name_prefix="ponder-openai")
            return self._pool.submit(fn)

    def mark_no_server_n(self) -> None:
        with self._lock:
            self._server_n = False

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)  # queued requests still post their end
        self.client.close()


def load_openai(base_url: str | None, api_key_env: str | None, model: str | None,
                context_length: int | None) -> OpenAIEngine:
    """Connect to the server named on the command line or in the config file."""
    from ponder.config import load_config

    settings = settings_from(base_url, api_key_env, load_config(), model=model,
                             context_length=context_length)
    return OpenAIEngine(settings)

