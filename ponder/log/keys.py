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
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ponder import __version__
from ponder.engines import Loaded
from ponder.engines.base import Sampling
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


def cache_key(model: Model, question: str, style: ThinkingStyle, request: Request) -> str:
    """The identity of a run: the same key, the same answer."""
    plan = request.plan
    return digest({
        "ponder": __version__,
        "model": model.fingerprint,
        "defaults": model.defaults,
        "sampling": asdict(Sampling()),
        "messages": build_messages(question.strip(), style),
        "strategy": plan.spec.name,
        "settings": plan.settings(),
        "seed": request.seed,
        "temperature": request.temperature,
        "budget": request.budget,
        "seconds": request.seconds,
        "ctx": request.ctx,
        "history": [list(turn) for turn in request.history],
    })


FileHasher = Callable[[Path], str]


def model_of_file(model_id: str, path: Path | None, entry: object | None,
                  hasher: FileHasher, defaults: object = None) -> Model:
    """A model file's identity: the registry's sha256 when it has one, else the file's.
    Its registry entry and family defaults (sampling, prompt prefix) shape its runs."""
    sha = getattr(entry, "sha256", "") or None
    if sha is None and path is not None:
        sha = hasher(path)
    return Model(model_id, sha, sha, f"{entry!r} {defaults!r}")


def model_before_load(kind: str, spec: str | None, hasher: FileHasher
                      ) -> tuple[Model, ThinkingStyle] | None:
    """The model the llama engine would load, without loading it (None: not known yet)."""
    if kind != "llama":
        return None
    from ponder.errors import PonderError
    from ponder.registry import resolve_model

    try:
        resolved = resolve_model(spec)
    except PonderError:
        return None  # loading will say what is wrong
    model_id = resolved.entry.id if resolved.entry else resolved.path.name
    model = model_of_file(model_id, resolved.path, resolved.entry, hasher, resolved.defaults)
    return model, resolved.thinking


def model_of(loaded: Loaded, hasher: FileHasher) -> Model:
    """The loaded model's identity: its file's, or what the engine says of itself."""
    from ponder.registry import load_registry

    path = getattr(loaded.engine, "path", None)
    if isinstance(path, Path):
        entry = load_registry().find(loaded.model_id)
        return model_of_file(loaded.model_id, path, entry, hasher, loaded.defaults)
    own = getattr(loaded.engine, "fingerprint", None)
    return Model(loaded.model_id, None, own if isinstance(own, str) and own else None,
                 repr(loaded.defaults))
