"""Prompts for OpenAI-compatible servers: a Hugging Face chat template rendered here (raw
completions), or the messages themselves, packed into one string (chat completions)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from ponder.engines._ggufmeta import TemplateInfo, template_info
from ponder.errors import InputError
from ponder.events import Message

CHAT_MARK = "\x1eponder-chat\x1e"


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


def template_from_setting(value: str) -> TemplateInfo:
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
