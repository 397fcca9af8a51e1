"""Engine factories. Backends are imported lazily so that `ponder --help` stays instant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ponder.engines.base import Engine
from ponder.errors import InputError
from ponder.registry import FamilyDefaults
from ponder.thinking import ThinkingStyle


@dataclass(frozen=True)
class EngineOptions:
    """Everything a factory may need to load a model; hashable so loads can be cached."""

    model: str | None = None
    gpu_layers: int | None = None
    """Layers to offload to a GPU; None: all with a GPU build of llama.cpp, else none."""
    n_ctx: int | None = None
    threads: int | None = None
    slots: int = 8
    base_url: str | None = None
    api_key_env: str | None = None
    optimize: bool = False
    """Run a registered model's optimized copy when one exists. The CLI asks for it unless
    given --no-optimize; scripts and benchmarks get the download unless they ask."""


@dataclass
class Loaded:
    engine: Engine
    style: ThinkingStyle
    model_id: str
    defaults: FamilyDefaults = field(default_factory=FamilyDefaults)
    """The family's sampling settings and assistant-turn prefix (models.toml)."""


Factory = Callable[[EngineOptions], Loaded]
_FACTORIES: dict[str, Factory] = {}
_CACHE: dict[tuple[str, EngineOptions], Loaded] = {}


def register_engine(name: str, factory: Factory) -> None:
    _FACTORIES[name] = factory
    for key in [k for k in _CACHE if k[0] == name]:
        del _CACHE[key]


def engine_names() -> list[str]:
    return sorted(_FACTORIES)


def default_engine() -> str:
    """The config file's `engine`, else the in-process llama.cpp engine."""
    from ponder.config import load_config

    return str(load_config().get("engine") or "llama")


def load_engine(kind: str | None, options: EngineOptions) -> Loaded:
    """Load (once per process) the model `options` names on the `kind` backend."""
    kind = kind or default_engine()
    if kind not in _FACTORIES:
        raise InputError(f"unknown engine '{kind}'", f"choose from {', '.join(engine_names())}")
    key = (kind, options)
    if key not in _CACHE:
        _CACHE[key] = _FACTORIES[kind](options)
    return _CACHE[key]


def _load_llama(options: EngineOptions) -> Loaded:
    from ponder.registry import resolve_model
    from ponder.sources import verify

    resolved = resolve_model(options.model, optimized=options.optimize)
    if resolved.entry is not None:
        verify(resolved.path, resolved.entry)
    from ponder.engines.gpu import offload_layers  # llama.cpp loads only for a usable file
    from ponder.engines.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(
        resolved.path,
        n_ctx=options.n_ctx,
        n_slots=options.slots,
        n_threads=options.threads,
        gpu_layers=offload_layers(options.gpu_layers),
    )
    model_id = resolved.entry.id if resolved.entry else resolved.path.name
    return Loaded(engine, resolved.thinking, model_id, resolved.defaults)


register_engine("llama", _load_llama)


def _load_openai(options: EngineOptions) -> Loaded:
    from ponder.engines.openai import load_openai

    engine = load_openai(options.base_url, options.api_key_env, options.model, options.n_ctx)
    return Loaded(engine, engine.style, engine.model_name)


register_engine("openai", _load_openai)
