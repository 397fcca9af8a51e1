"""Reading a GGUF file's chat template and special tokens, in pure Python.

A llama-cpp-python server names its model by the GGUF path it loaded; when that file is on
this machine, the OpenAI engine reads the template from it to render prompts itself. Only
the key/value header is read (tensors are never touched).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_SCALARS: dict[int, str] = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f",
                            7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_TOKENS = "tokenizer.ggml.tokens"


@dataclass(frozen=True)
class TemplateInfo:
    template: str
    bos_token: str
    eos_token: str
    train_context: int | None = None
    add_bos: bool | None = None


class _Reader:
    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh

    def unpack(self, fmt: str) -> object:
        size = struct.calcsize(fmt)
        data = self._fh.read(size)
        if len(data) != size:
            raise ValueError("truncated GGUF header")
        return struct.unpack(fmt, data)[0]

    def uint(self, fmt: str = "<Q") -> int:
        value = self.unpack(fmt)
        assert isinstance(value, int)
        return value

    def string(self) -> str:
        size = self.uint()
        if size > 1 << 26:
            raise ValueError("implausible GGUF string")
        return self._fh.read(size).decode("utf-8", errors="replace")

    def value(self, kind: int, keep: bool) -> object:
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, count = self.uint("<I"), self.uint()
            values = [self.value(item, keep) for _ in range(count)]
            return values if keep else None
        if kind not in _SCALARS:
            raise ValueError(f"unknown GGUF value type {kind}")
        return self.unpack(_SCALARS[kind])


def read_metadata(path: Path) -> dict[str, object]:
    """Every key/value of the header (arrays other than the token list are dropped)."""
    with path.open("rb") as fh:
        reader = _Reader(fh)
        if fh.read(4) != b"GGUF":
            raise ValueError(f"{path} is not a GGUF file")
        version = reader.uint("<I")
        if version < 2:
            raise ValueError(f"GGUF version {version} is too old")
        reader.uint()  # tensor count
        meta: dict[str, object] = {}
        for _ in range(reader.uint()):
            key = reader.string()
            kind = reader.uint("<I")
            meta[key] = reader.value(kind, keep=key == _TOKENS)
        return meta


def _token(meta: dict[str, object], which: str) -> str:
    tokens, index = meta.get(_TOKENS), meta.get(f"tokenizer.ggml.{which}_token_id")
    if isinstance(tokens, list) and isinstance(index, int) and 0 <= index < len(tokens):
        return str(tokens[index])
    return ""


def template_info(path: Path) -> TemplateInfo | None:
    """The chat template of a GGUF file, or None when it has none or cannot be read."""
    try:
        meta = read_metadata(path)
    except (OSError, ValueError, struct.error, AssertionError):
        return None
    template = meta.get("tokenizer.chat_template")
    if not isinstance(template, str) or not template.strip():
        return None
    arch = meta.get("general.architecture")
    train = meta.get(f"{arch}.context_length")
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    return TemplateInfo(template, _token(meta, "bos"), _token(meta, "eos"),
                        train if isinstance(train, int) else None,
                        add_bos if isinstance(add_bos, bool) else None)
