"""Optimized copies: the weight format a registered model runs in, when not its download.

`ponder models optimize ID` requantizes the verified original into
``<models_dir>/optimized/`` and records the choice in ``optimized/<id>.json``; pulling a
registry variant (``ponder models pull ID --quant Q4_0``) records the downloaded file the
same way. The record holds the copy's own sha256 and size (so it is verified like any
download) and the sha256 of the original it was made from (a copy of an older original is
ignored). Engines run the recorded file unless told not to (``--no-optimize``); the original
is never modified.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ponder.config import models_dir

if TYPE_CHECKING:
    from ponder.catalog import ModelEntry

Origin = Literal["quantized", "download"]


@dataclass(frozen=True)
class CopyRecord:
    """One model's chosen format: which file, its checksum, and where it came from."""

    model: str
    format: str
    path: str
    sha256: str
    size: int
    origin: Origin = "quantized"
    source_sha256: str = ""
    created: str = ""
    measurements: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        return Path(self.path)


def copies_dir() -> Path:
    """Where requantized copies and their records live (inside ponder's models dir)."""
    return models_dir() / "optimized"


def record_path(model_id: str) -> Path:
    return copies_dir() / f"{model_id}.json"


def copy_file_name(entry: ModelEntry, fmt: str) -> str:
    """``qwen2.5-coder-0.5b-instruct-q4_k_m.gguf`` -> ``...-q4_k_m.Q4_0.gguf``."""
    return f"{Path(entry.file).stem}.{fmt.upper()}.gguf"


def read_record(model_id: str) -> CopyRecord | None:
    """The model's record, or None when there is none or it cannot be read."""
    try:
        data = json.loads(record_path(model_id).read_text(encoding="utf-8"))
        return CopyRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_record(record: CopyRecord) -> Path:
    """Write the record atomically (a reader sees the old one or the new one)."""
    path = record_path(record.model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(record), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def remove_record(model_id: str) -> list[Path]:
    """Forget the model's chosen format; delete the file when ponder made it."""
    record = read_record(model_id)
    removed: list[Path] = []
    if record is not None and record.origin == "quantized" and record.file.is_file():
        record.file.unlink()
        removed.append(record.file)
    path = record_path(model_id)
    if path.is_file():
        path.unlink()
        removed.append(path)
    return removed


def usable_record(entry: ModelEntry) -> CopyRecord | None:
    """The record if its file exists and was made from the registry's current original."""
    record = read_record(entry.id)
    if record is None or not record.file.is_file():
        return None
    if record.origin == "quantized" and entry.sha256 and record.source_sha256 != entry.sha256:
        return None
    return record


def copy_entry(entry: ModelEntry, record: CopyRecord) -> ModelEntry:
    """The entry describing the copy's file: same model, its own format, size and sha256."""
    return replace(
        entry,
        quant=record.format,
        file=record.file.name,
        size=record.size,
        size_exact=True,
        sha256=record.sha256,
        sources=(),
        variants=(),
    )


def entry_for_copy(path: Path, entries: list[ModelEntry]) -> ModelEntry | None:
    """The registered model whose recorded copy is ``path`` (for ``--model PATH``)."""
    with contextlib.suppress(OSError):
        resolved = path.resolve()
        for entry in entries:
            record = read_record(entry.id)
            if record is not None and record.file.resolve() == resolved:
                return entry
    return None
