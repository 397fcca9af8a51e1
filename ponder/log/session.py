"""The log as a command uses it: switches, the cache, and one entry per run.

`RunLog` is what `ask`, `solve`, `eval` and `chat` hold: it opens the database lazily
(nothing is written, or even created, when the log is off), answers repeated questions from
it, and gives each run an :class:`Entry` whose memory lets the run's chains build on
logged ones. A log that cannot be used costs one note on stderr, never the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

from ponder.config import load_config
from ponder.engines import EngineOptions, Loaded
from ponder.engines.base import Message, Sampling
from ponder.errors import InputError
from ponder.events import Result, Sample
from ponder.log.db import LogError, log_path
from ponder.log.keys import (
    Model,
    Request,
    cache_key,
    chain_key,
    model_before_load,
    model_of,
    question_messages,
)
from ponder.log.store import Store, writer
from ponder.strategies.base import Task
from ponder.strategies.memory import ChainRecord, PriorChain
from ponder.thinking import build_messages

LOGGED_TOP_LOGPROBS = 5
"""Alternatives per token every logged chain keeps, so that any strategy's confidence can
be recomputed when the chain is replayed (DeepConf's default k)."""

Warn = Callable[[str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class Switches:
    log: bool = True
    cache: bool = True
    reuse: bool = True


def switches(no_log: bool = False, no_cache: bool = False, *, reuse: bool = True) -> Switches:
    """The flags over the config file's `[log]` table (`enabled`, `cache`: true or false).

    Without the cache a run is fresh: it neither answers from the log nor builds on it.
    """
    table = load_config().get("log", {})
    if not isinstance(table, dict):
        raise InputError("the config file's 'log' must be a table", "e.g. [log] enabled = false")
    values = {name: table.get(name, True) for name in ("enabled", "cache")}
    for name, value in values.items():
        if not isinstance(value, bool):
            raise InputError(f"the config file's log.{name} must be true or false")
    on = values["enabled"] and not no_log
    cache = on and values["cache"] and not no_cache
    return Switches(on, cache, cache and reuse)


class RunLog:
    """One command's use of the log."""

    def __init__(self, command: str, switches: Switches, warn: Warn,
                 path: Path | None = None) -> None:
        self.command = command
        self.switches = switches
        self.warn = warn
        self.path = path
        self._store: Store | None = None
        self._broken = not switches.log
        self._models: dict[int, Model] = {}
        self._lock = threading.RLock()  # `solve` begins problems from several threads

    @property
    def store(self) -> Store | None:
        with self._lock:
            if self._store is None and not self._broken:
                self._store = self.safely(lambda: Store(self.path or log_path()), None)
            return self._store

    def safely(self, action: Callable[[], T], default: T) -> T:
        """Run a log action; on failure warn once and go on without the log."""
        if self._broken:
            return default
        try:
            return action()
        except (LogError, OSError) as exc:
            self._broken = True
            self.warn(f"ponder: note: {exc}; going on without the log")
            return default

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def lookup(self, question: str, request: Request, engine: str, options: EngineOptions
               ) -> Entry | None:
        """Answer from the log before any model is loaded, when the engine allows it."""
        store = self.store
        if store is None or not self.switches.cache:
            return None
        known = self.safely(lambda: model_before_load(engine, options, store.file_sha256),
                            None)
        if known is None or known[0].fingerprint is None:
            return None
        model, style, defaults = known
        return self._hit(model, question_messages(question, style, defaults, request.plan),
                         request)

    def begin(self, task: Task, loaded: Loaded, request: Request, *,
              conversation: str | None = None, turn: int | None = None) -> Entry:
        """The entry of a run about to start (or answered from the log: `entry.hit`)."""
        store = self.store
        if store is None:
            return Entry(self, None, None)
        model = self._model(loaded, store)
        messages = build_messages(task.question, task.style, task.system)
        hit = self._hit(model, messages, request)
        if hit is not None:
            return hit
        key = cache_key(model, messages, request)
        fields = _start_fields(self.command, task, model, request, key)
        fields.update(conversation=conversation, turn=turn)
        run_id = self.safely(lambda: store.add_run(fields), None)
        if run_id is None:
            return Entry(self, None, None)
        memory = LogMemory(self, run_id, model.fingerprint, self.switches.reuse)
        task.memory = memory
        return Entry(self, run_id, memory)

    def bind(self, request: Request) -> Binding:
        """This log with the request every problem of a batch shares."""
        return Binding(self, request)

    def _model(self, loaded: Loaded, store: Store) -> Model:
        with self._lock:
            if id(loaded) not in self._models:
                fallback = Model(loaded.model_id, None, None)
                self._models[id(loaded)] = self.safely(
                    lambda: model_of(loaded, store.file_sha256), fallback)
            return self._models[id(loaded)]

    def _hit(self, model: Model, messages: list[Message], request: Request) -> Entry | None:
        store = self.store
        if store is None or not self.switches.cache or model.fingerprint is None:
            return None
        key = cache_key(model, messages, request)
        row = self.safely(lambda: store.cached(key), None)
        if row is None:
            return None
        hit = Hit(int(row["id"]), float(row["created"]), _json(row["record"]))
        return Entry(self, None, None, hit=hit, key=key, request=request, model=model)


@dataclass(frozen=True)
class Binding:
    """A log and a request: what `solve` and `eval` hand to each problem."""

    log: RunLog
    request: Request

    def begin(self, task: Task, loaded: Loaded) -> Entry:
        return self.log.begin(task, loaded, self.request)


@dataclass(frozen=True)
class Hit:
    """A logged run that answers this one."""

    run_id: int
    created: float
    record: dict[str, Any]

    def result(self) -> Result:
        return result_from_record(self.record)

    @property
    def seconds(self) -> float:
        return float(self.record.get("seconds") or 0.0)


class Entry:
    """One run in the log: `finish` adds the log's fields to its record and writes it."""

    def __init__(self, log: RunLog, run_id: int | None, memory: LogMemory | None, *,
                 hit: Hit | None = None, key: str | None = None,
                 request: Request | None = None, model: Model | None = None) -> None:
        self.log = log
        self.run_id = run_id
        self.memory = memory
        self.hit = hit
        self._key = key
        self._request = request
        self._model = model

    def finish(self, record: dict[str, Any], result: Result | None = None) -> dict[str, Any]:
        """`record` with `cached`, `reuse` and `log_id`, written to the log (the run's row
        is completed; a cache hit gets a row of its own naming the run that answered)."""
        memory = self.memory
        record["cached"] = self.hit is not None
        record["reuse"] = {"chains": memory.reused if memory else 0,
                           "tokens_saved": memory.saved if memory else 0}
        store = self.log.store
        if store is not None and self.hit is not None:
            fields = _hit_fields(self.log.command, self.hit, record, self._key,
                                 self._request, self._model)
            self.run_id = self.log.safely(lambda: store.add_run(fields), None)
        elif store is not None and self.run_id is not None and result is not None:
            run_id, fields = self.run_id, _finish_fields(record, result, memory)
            self.log.safely(lambda: store.update_run(run_id, fields), None)
        record["log_id"] = self.run_id
        return record


class LogMemory:
    """The chain memory of one logged run (see :class:`ponder.strategies.memory.ChainMemory`)."""

    top_logprobs = LOGGED_TOP_LOGPROBS

    def __init__(self, log: RunLog, run_id: int, fingerprint: str | None, reuse: bool) -> None:
        self.log = log
        self.run_id = run_id
        self.fingerprint = fingerprint
        self.reuse = reuse and fingerprint is not None
        self.reused = 0
        self.saved = 0

    def key(self, prompt: str, sampling: Sampling) -> str:
        return chain_key(self.fingerprint or f"unidentified run {self.run_id}", prompt, sampling)

    def prior(self, key: str, top_logprobs: int) -> PriorChain | None:
        store = self.log.store
        if not self.reuse or store is None:
            return None
        return self.log.safely(lambda: store.prior(key, top_logprobs), None)

    def record(self, chains: list[ChainRecord]) -> None:
        self.reused += sum(c.reused_tokens > 0 for c in chains)
        self.saved += sum(c.reused_tokens for c in chains)
        store = self.log.store
        if store is not None:
            self.log.safely(lambda: store.add_chains(self.run_id, chains), None)


def _start_fields(command: str, task: Task, model: Model, request: Request, key: str
                  ) -> dict[str, Any]:
    plan = request.plan
    return {
        "created": time.time(), "status": "running", "command": command,
        "question": task.question, "model": model.id, "model_sha256": model.sha256,
        "effort": plan.effort, "strategy": plan.spec.name, "settings": plan.settings(),
        "sampling": asdict(task.sampling), "seed": task.sampling.seed,
        "cache_key": key if model.fingerprint else None, **writer(),
    }


def _finish_fields(record: dict[str, Any], result: Result, memory: LogMemory | None
                   ) -> dict[str, Any]:
    return {
        "finished": time.time(), "status": "interrupted" if result.interrupted else "done",
        "answer": result.answer, "finish_reason": result.finish_reason,
        "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
        "thinking_tokens": result.thinking_tokens, "seconds": record.get("seconds"),
        "chains_reused": memory.reused if memory else 0,
        "tokens_saved": memory.saved if memory else 0, "record": record,
    }


def _hit_fields(command: str, hit: Hit, record: dict[str, Any], key: str | None,
                request: Request | None, model: Model | None) -> dict[str, Any]:
    """A cache hit's own row: what was asked, and which run answered it."""
    usage = record.get("usage") or {}
    return {
        "created": time.time(), "finished": time.time(), "status": "done",
        "command": command, "question": record.get("question") or "",
        "model": record.get("model") or "", "model_sha256": model.sha256 if model else None,
        "effort": record.get("effort"), "strategy": record.get("strategy") or "",
        "settings": record.get("settings") or {}, "sampling": {},
        "seed": request.seed if request else 0, "cache_key": key, "cached_from": hit.run_id,
        "answer": record.get("answer"), "finish_reason": record.get("finish_reason"),
        "prompt_tokens": 0, "completion_tokens": 0,
        "thinking_tokens": usage.get("thinking_tokens"), "seconds": record.get("seconds"),
        "record": record,
    }


def result_from_record(record: dict[str, Any]) -> Result:
    """The Result a logged record was made from (chain texts are in the chains table)."""
    usage = record.get("usage") or {}
    samples = [Sample(int(s.get("chain", 0)), s.get("answer"), "", "", int(s.get("tokens") or 0),
                      s.get("finish_reason") or "stop", s.get("confidence"), s.get("score"),
                      stats=dict(s.get("stats") or {}),
                      thinking_tokens=int(s.get("thinking_tokens") or 0))
               for s in record.get("samples") or []]
    return Result(
        answer=record.get("answer"), text=record.get("text") or "",
        thinking=record.get("thinking") or "", finish_reason=record.get("finish_reason") or "stop",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        thinking_tokens=int(usage.get("thinking_tokens") or 0),
        samples=samples, votes=dict(record.get("votes") or {}),
        settings=dict(record.get("run") or {}), interrupted=bool(record.get("interrupted")),
        summary=record.get("summary") if record.get("summary_source") == "model" else None,
        summary_tokens=int(usage.get("summary_tokens") or 0),
    )


def _json(text: str | None) -> dict[str, Any]:
    import json

    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def hit_note(hit: Hit) -> str:
    """The stderr line saying an answer comes from the log."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(hit.created))
    return (f"ponder: answered from the log (run {hit.run_id}, {when}); "
            "--no-cache runs it again")


__all__: Sequence[str] = ("Binding", "Entry", "Hit", "LogMemory", "Request", "RunLog", "Switches",
                          "hit_note", "switches")
