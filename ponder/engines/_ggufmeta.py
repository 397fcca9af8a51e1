"""Reading a GGUF file's chat template and special tokens with llama.cpp's own reader.

A llama-cpp-python server names its model by the GGUF path it loaded; when that file is on
this machine, the OpenAI engine reads the template from it to render prompts itself.
llama.cpp loads the file's vocabulary only (``vocab_only``: no tensors), which takes under
a second even for a 150k-token vocabulary. (The `gguf` package's ``GGUFReader`` builds one
numpy array per vocabulary entry: 10 s for SmolLM2's header and minutes for
Qwen2.5's, so it is not used here.)
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TemplateInfo:
    template: str
    bos_token: str
    eos_token: str
    train_context: int | None = None
    add_bos: bool | None = None


def template_info(path: Path) -> TemplateInfo | None:
    """The chat template of a GGUF file, or None when it has none or cannot be read."""
    with _vocab(path) as model:
        if model is None:
            return None
        import llama_cpp

        raw = llama_cpp.llama_model_chat_template(model, None)
        template = raw.decode("utf-8", "replace") if raw else ""
        if not template.strip():
            return None
        vocab = llama_cpp.llama_model_get_vocab(model)
        arch = _meta(model, "general.architecture")
        train = _meta(model, f"{arch}.context_length")
        return TemplateInfo(template, _token_text(vocab, llama_cpp.llama_vocab_bos(vocab)),
                            _token_text(vocab, llama_cpp.llama_vocab_eos(vocab)),
                            int(train) if train.isdigit() else None,
                            bool(llama_cpp.llama_vocab_get_add_bos(vocab)))


@contextlib.contextmanager
def _vocab(path: Path) -> Iterator[Any]:
    """The model's vocabulary and metadata loaded by llama.cpp (None when it cannot)."""
    if not path.is_file():
        yield None
        return
    import llama_cpp

    from ponder.engines.llamacpp.capi import backend_init, configure_logging

    configure_logging(verbose=False)
    backend_init()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(path).encode(), params)
    try:
        yield model or None
    finally:
        if model:
            llama_cpp.llama_model_free(model)


def _meta(model: Any, key: str) -> str:
    import llama_cpp

    buf = ctypes.create_string_buffer(256)
    n = llama_cpp.llama_model_meta_val_str(model, key.encode(), buf, len(buf))
    return buf.value.decode("utf-8", "replace") if n >= 0 else ""


def _token_text(vocab: Any, token: int) -> str:
    import llama_cpp

    if token < 0:
        return ""
    text = llama_cpp.llama_vocab_get_text(vocab, token)
    return text.decode("utf-8", "replace") if text else ""
