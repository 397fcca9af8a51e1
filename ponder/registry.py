"""The model registry (models.toml) and resolution of "which model file do we run".

Resolution order for :func:`resolve_model`:

1. the explicit ``spec`` (``--model``): a registered id/alias or a path to a ``.gguf`` file;
2. ``$PONDER_MODEL``;
3. the ``model`` key of the config file;
4. the best installed registered model: native reasoning models (``<think>``) first, then
   the largest file (a proxy for the most capable model the user chose to download),
   ties broken by id;
5. nothing installed: ModelNotInstalledError whose hint is the command that installs the
   default model.

For a registered model the file is its recorded optimized copy when the caller asks for
one (engines do, unless ``--no-optimize``), else the download, else an installed published
variant (:func:`model_file`). The entries themselves are parsed in :mod:`ponder.catalog`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ponder.catalog import (
    COPY_FORMATS,
    FamilyDefaults,
    ModelEntry,
    Registry,
    Source,
    SourceKind,
    Thinking,
    load_registry,
    parse_registry,
)
from ponder.config import config_path, hf_cache_dir, load_config, models_dir
from ponder.copies import copy_entry, entry_for_copy, usable_record
from ponder.errors import ModelFileError, ModelNotFoundError, ModelNotInstalledError

__all__ = [
    "COPY_FORMATS",
    "DEFAULT_MODEL",
    "GGUF_MAGIC",
    "FamilyDefaults",
    "ModelEntry",
    "Registry",
    "ResolvedModel",
    "Source",
    "SourceKind",
    "Thinking",
    "guess_family",
    "guess_thinking",
    "hf_cached_path",
    "installed_models",
    "installed_path",
    "load_registry",
    "local_path",
    "model_file",
    "parse_registry",
    "resolve_model",
]

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
"""The model suggested when nothing is installed: on PyPI (1.1 GB, sha256-checked), runs on a
CPU, and right on simple arithmetic (SmolLM2-135M, the test model, is not)."""

GGUF_MAGIC = b"GGUF"

_NATIVE_HINTS = re.compile(r"(?<![a-z0-9])r1(?![0-9])|qwq|qwen3|reason|think")


@dataclass(frozen=True)
class ResolvedModel:
    """The model file to run and what we know about it."""

    path: Path
    entry: ModelEntry | None
    """Describes ``path``: for an optimized copy or a variant, an entry with the model's id
    and that file's own format, size and sha256."""
    thinking: Thinking
    origin: str = "argument"
    """Where the choice came from: argument, PONDER_MODEL, config, or installed."""
    defaults: FamilyDefaults = field(default_factory=FamilyDefaults)


# --- installed files -----------------------------------------------------------------


def local_path(entry: ModelEntry) -> Path:
    """Where ponder keeps (or would keep) this model's file in its own models dir."""
    return models_dir() / entry.file


def hf_cached_path(source: Source) -> Path | None:
    """The hub-cache copy of an ``hf`` source, if it was downloaded (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        source.repo, source.file, cache_dir=hf_cache_dir(), revision=source.revision
    )
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def installed_path(entry: ModelEntry) -> Path | None:
    """The model's file if it is on disk: ponder's models dir first, then the HF cache."""
    own = local_path(entry)
    if own.is_file():
        return own
    for source in entry.sources:
        if source.kind == "hf":
            cached = hf_cached_path(source)
            if cached is not None:
                return cached
    return None


def installed_models(registry: Registry | None = None) -> list[tuple[ModelEntry, Path]]:
    """Installed registered models, best first (see the module docstring).

    A model counts as installed when its download or one of its published variants is.
    """
    reg = registry if registry is not None else load_registry()
    found = [(e, p) for e in reg if (p := _installed_file(e)) is not None]
    found.sort(key=lambda ep: (ep[0].thinking != "native", -ep[0].size, ep[0].id))
    return found


def _installed_file(entry: ModelEntry) -> Path | None:
    return installed_path(entry) or next(
        (p for v in entry.variants if (p := installed_path(v)) is not None), None
    )


def model_file(entry: ModelEntry, optimized: bool = False) -> tuple[Path, ModelEntry] | None:
    """The file to run for ``entry`` and the entry describing that file (to verify it).

    With ``optimized``, the recorded optimized copy (see :mod:`ponder.copies`) comes first;
    then the download; then any installed published variant.
    """
    if optimized:
        record = usable_record(entry)
        if record is not None:
            return record.file, copy_entry(entry, record)
    path = installed_path(entry)
    if path is not None:
        return path, entry
    for variant in entry.variants:
        found = installed_path(variant)
        if found is not None:
            return found, variant
    return None


# --- resolution ----------------------------------------------------------------------


def guess_thinking(path: Path) -> Thinking:
    """Guess from a file name whether the model emits <think> tags by itself."""
    return "native" if _NATIVE_HINTS.search(path.name.lower()) else "prompted"


_FAMILY_HINTS = (
    (re.compile(r"r1-distill|deepseek-r1"), "deepseek-r1-distill"),
    (re.compile(r"qwq"), "qwq"),
    (re.compile(r"qwen3"), "qwen3"),
    (re.compile(r"qwen2\.5-coder"), "qwen2.5-coder"),
    (re.compile(r"phi-?4"), "phi4"),
    (re.compile(r"smollm2"), "smollm2"),
)


def guess_family(path: Path) -> str:
    """The family of an unregistered GGUF file, guessed from its name ('' when unknown)."""
    name = path.name.lower()
    return next((family for pattern, family in _FAMILY_HINTS if pattern.search(name)), "")


def _looks_like_path(spec: str) -> bool:
    return (
        spec.lower().endswith(".gguf")
        or "/" in spec
        or os.sep in spec
        or spec.startswith(("~", "."))
    )


def _resolve_path(spec: str, registry: Registry, origin: str) -> ResolvedModel:
    path = Path(spec).expanduser()
    if not path.exists():
        raise ModelNotFoundError(
            f"model file {path} does not exist",
            hint="pass a .gguf file or a model id from `ponder models list`",
        )
    if not path.is_file():
        raise ModelFileError(f"{path} is not a file", hint="pass the path of a .gguf file")
    if path.suffix.lower() != ".gguf":
        raise ModelFileError(
            f"{path} is not a .gguf file", hint="ponder runs GGUF models (llama.cpp format)"
        )
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if magic != GGUF_MAGIC:
        raise ModelFileError(f"{path} is not a GGUF file (bad header)")
    entry = _entry_for_file(path, registry)
    thinking = entry.thinking if entry is not None else guess_thinking(path)
    family = entry.family if entry is not None else guess_family(path)
    return ResolvedModel(path=path, entry=entry, thinking=thinking, origin=origin,
                         defaults=registry.family(family))


def _entry_for_file(path: Path, registry: Registry) -> ModelEntry | None:
    """The entry describing a file given by path: a download, a variant, or a copy."""
    for entry in registry:
        for candidate in (entry, *entry.variants):
            if candidate.file == path.name:
                return candidate
    copy_of = entry_for_copy(path, list(registry))
    record = usable_record(copy_of) if copy_of is not None else None
    return copy_entry(copy_of, record) if copy_of is not None and record is not None else None


def _resolve_spec(spec: str, registry: Registry, origin: str, optimized: bool) -> ResolvedModel:
    spec = spec.strip()
    entry = registry.find(spec)
    if entry is None:
        if _looks_like_path(spec) or Path(spec).expanduser().is_file():
            return _resolve_path(spec, registry, origin)
        entry = registry.get(spec)  # raises ModelNotFoundError with suggestions
    found = model_file(entry, optimized)
    if found is None:
        raise ModelNotInstalledError(
            f"model {entry.id} is not installed", hint=f"ponder models pull {entry.id}"
        )
    return ResolvedModel(path=found[0], entry=found[1], thinking=entry.thinking, origin=origin,
                         defaults=registry.family(entry.family))


def _configured_spec() -> tuple[str, str] | None:
    env = os.environ.get("PONDER_MODEL", "").strip()
    if env:
        return env, "PONDER_MODEL"
    value = load_config().get("model")
    if isinstance(value, str) and value.strip():
        return value, f"config {config_path()}"
    return None


def resolve_model(
    spec: str | None = None, registry: Registry | None = None, *, optimized: bool = False
) -> ResolvedModel:
    """Pick the model to run: spec > $PONDER_MODEL > config `model` > best installed.

    ``optimized`` (what engines ask for unless ``--no-optimize``) runs a registered model's
    optimized copy when one is recorded; ``entry`` then describes the copy's file. An
    explicit ``.gguf`` path always runs that file.
    """
    reg = registry if registry is not None else load_registry()
    if spec is not None and spec.strip():
        return _resolve_spec(spec, reg, "argument", optimized)
    configured = _configured_spec()
    if configured is not None:
        return _resolve_spec(configured[0], reg, configured[1], optimized)
    installed = installed_models(reg)
    if installed:
        entry, path = installed[0]
        path, file_entry = model_file(entry, optimized) or (path, entry)
        return ResolvedModel(path=path, entry=file_entry, thinking=entry.thinking,
                             origin="installed", defaults=reg.family(entry.family))
    raise ModelNotInstalledError(
        "no model is installed", hint=f"ponder models pull {DEFAULT_MODEL}"
    )
