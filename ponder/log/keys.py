"""What makes two runs or two chains the same: the cache key, the chain key, the model.

A model is its file's sha256 (the registry's verified one, else computed once per path,
size and mtime), so a renamed or re-downloaded file keeps its log and a replaced one does
not. Engines without a file (a remote server) have no fingerprint: their runs are logged,
but never answered from the log nor built on.

The cache key is computed from what was asked (the question, the strategy and its
settings, seed, temperature, limits), not from the loaded engine, so that a repeated
question is answered before the model is loaded. The sampling defaults and the model's
registry entry are part of it: when they change, earlier answers no longer count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ponder import __version__
from ponder.engines import EngineOptions, Loaded
from ponder.engines.base import Message, Sampling
from ponder.registry import FamilyDefaults
from ponder.runner import Plan
from ponder.thinking import ThinkingStyle, build_messages

CHAIN_FIELDS = ("temperature", "top_p", "top_k", "min_p", "seed", "stop")
"""The sampling settings that decide a chain's tokens (max_tokens and top_logprobs do not)."""


@dataclass(frozen=True)
class Model:
    """The model a run used, as the log identifies it."""

    id: str
    sha256: str | None
    fingerprint: str | None
    """What keys the cache and the chains: the sha256, an engine's own, or None (neither)."""
    defaults: str = ""
    """The model's registry entry, as text: settings that may shape its runs."""


@dataclass(frozen=True)
class Request:
    """What decides a run's outcome, as the user asked for it."""

    plan: Plan
    seed: int = 0
    temperature: float | None = None
    budget: int | None = None
    seconds: float | None = None
    ctx: int | None = None
    history: tuple[tuple[str, str], ...] = ()
    """Earlier (question, answer) turns of a chat, which the prompt carries."""


def digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_key(fingerprint: str, prompt: str, sampling: Sampling) -> str:
    """The identity of a chain: model, full prompt, and the settings that draw its tokens.

    Greedy decoding (temperature 0, or the first chain of a `greedy_first` generation)
    ignores seed and sampling filters: every greedy chain of a prompt is the same chain.
    """
    if sampling.temperature <= 0 or sampling.greedy_first:
        fields: dict[str, object] = {"greedy": True, "stop": sampling.stop}
    else:
        fields = {name: getattr(sampling, name) for name in CHAIN_FIELDS}
    return digest({"model": fingerprint, "prompt": prompt, "sampling": fields})


def cache_key(model: Model, messages: Sequence[Message], request: Request) -> str:
    """The identity of a run: the same key, the same answer."""
    plan = request.plan
    return digest({
        "ponder": __version__,
        "model": model.fingerprint,
        "defaults": model.defaults,
        "sampling": asdict(Sampling()),
        "messages": list(messages),
        "strategy": plan.spec.name,
        "settings": plan.settings(),
        "seed": request.seed,
        "temperature": request.temperature,
        "budget": request.budget,
        "seconds": request.seconds,
        "ctx": request.ctx,
        "history": [list(turn) for turn in request.history],
    })


def question_messages(question: str, style: ThinkingStyle, defaults: FamilyDefaults,
                      plan: Plan) -> list[Message]:
    """The messages `make_task` gives the question (one-chain strategies get the family's
    own system prompt), known before the model is loaded."""
    system = defaults.single_system if plan.spec.single_chain or defaults.plain_chains else ""
    return build_messages(question.strip(), style, system)


FileHasher = Callable[[Path], str]


def model_of_file(model_id: str, path: Path, sha256: str | None, hasher: FileHasher,
                  defaults: object = None) -> Model:
    """A model file's identity: the registry's sha256 of that file when it has one, else
    the file's own; its family defaults (sampling, prompts) shape its runs too."""
    sha = sha256 or hasher(path)
    return Model(model_id, sha, sha, repr(defaults))


def model_before_load(kind: str, options: EngineOptions, hasher: FileHasher
                      ) -> tuple[Model, ThinkingStyle, FamilyDefaults] | None:
    """The model the llama engine would load, without loading it (None: not known yet)."""
    if kind != "llama":
        return None
    from ponder.errors import PonderError
    from ponder.registry import resolve_model

    try:
        resolved = resolve_model(options.model, optimized=options.optimize)
    except PonderError:
        return None  # loading will say what is wrong
    entry = resolved.entry  # it describes this very file (a download, variant or copy)
    model_id = entry.id if entry else resolved.path.name
    model = model_of_file(model_id, resolved.path, entry.sha256 if entry else None, hasher,
                          resolved.defaults)
    return model, resolved.thinking, resolved.defaults


def model_of(loaded: Loaded, hasher: FileHasher) -> Model:
    """The loaded model's identity: its file's, or what the engine says of itself."""
    path = getattr(loaded.engine, "path", None)
    if isinstance(path, Path):
        return model_of_file(loaded.model_id, path, _registry_sha(loaded.model_id, path),
                             hasher, loaded.defaults)
    own = getattr(loaded.engine, "fingerprint", None)
    return Model(loaded.model_id, None, own if isinstance(own, str) and own else None,
                 repr(loaded.defaults))


def _registry_sha(model_id: str, path: Path) -> str | None:
    """The registry's sha256 for `path` when it is the model's download or a published
    variant of it (an optimized copy, or any other file, is hashed)."""
    from ponder.registry import load_registry

    entry = load_registry().find(model_id)
    if entry is None:
        return None
    for candidate in (entry, *getattr(entry, "variants", ())):
        if candidate.file == path.name and candidate.sha256:
            return str(candidate.sha256)
    return None
