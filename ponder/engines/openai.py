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

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from ponder.engines._ggufmeta import TemplateInfo, template_info
from ponder.engines._http import RemoteClient
from ponder.engines._openai_gen import OpenAIGeneration
from ponder.engines._openai_prompts import (
    CHAT_MARK,
    JinjaTemplate,
    decode_chat,
    encode_chat,
    estimate_tokens,
    template_from_setting,
)
from ponder.engines._openai_settings import (
    OpenAISettings,
    list_remote_models,
    make_client,
    model_ids,
    resolve_api_key,
    settings_from,
)
from ponder.engines.base import Sampling
from ponder.errors import (
    ContextOverflowError,
    InputError,
    ModelNotFoundError,
    RemoteError,
)
from ponder.events import Message
from ponder.thinking import THINK_OPEN, ThinkingStyle

__all__ = ["OpenAIEngine", "OpenAISettings", "decode_chat", "encode_chat", "list_remote_models",
           "load_openai", "resolve_api_key", "settings_from"]

Mode = Literal["completions", "chat"]
DEFAULT_CONTEXT = 2048
PROBE_TEXT = "Hello"


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
        self._models = model_ids(self._listing)
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
            return JinjaTemplate(template_from_setting(self.settings.chat_template))
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

