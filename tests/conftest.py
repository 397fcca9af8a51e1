"""Shared fixtures and helpers: an isolated ponder home, a queued scripted engine, a capture
console, a hand-driven clock; running a strategy on scripted chains; fake engines for batch
runs; records and PNG checks for evaluation and plots."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ponder.engines import Loaded, register_engine
from ponder.engines.base import Sampling
from ponder.engines.scripted import Script, ScriptedEngine, ScriptedGeneration
from ponder.events import ChainDone, EngineEvent, Result, StrategyEvent
from ponder.log.session import LogMemory, RunLog, Switches
from ponder.plot import PALETTE
from ponder.runner import make_plan, make_task, run_plan
from ponder.strategies.base import Clock


@pytest.fixture(autouse=True)
def ponder_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache and config, never the user's."""
    home = tmp_path / "ponder-home"
    monkeypatch.setenv("PONDER_HOME", str(home))
    monkeypatch.setenv("PONDER_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.delenv("PONDER_MODEL", raising=False)
    monkeypatch.delenv("PONDER_DEBUG", raising=False)
    monkeypatch.delenv("PONDER_ENGINE", raising=False)
    return home


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedEngine]:
    """A ScriptedEngine registered as `--engine scripted` (and made the default engine)."""
    engine = ScriptedEngine(model_name="scripted-model")
    register_engine("scripted", lambda _opts: Loaded(engine, "prompted", "scripted-model"))
    monkeypatch.setenv("PONDER_ENGINE", "scripted")
    yield engine


@pytest.fixture
def capture() -> Console:
    """A fixed-width, non-terminal console writing to a string buffer."""
    return Console(file=io.StringIO(), width=80, force_terminal=False, color_system=None)


def write(path: Path, text: str) -> Path:
    """Write `text` to `path` (UTF-8) and return the path."""
    path.write_text(text, encoding="utf-8")
    return path


class FakeClock:
    """A clock tests advance by hand."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# ---------------------------------------------------------------------------------------
# Strategies on scripted chains

Events = list[StrategyEvent]


def run_strategy(
    engine: ScriptedEngine,
    name: str,
    *,
    budget: int | None = None,
    seconds: float | None = None,
    clock: Clock | None = None,
    question: str = "What is 2 + 2?",
    interrupt_at: int | None = None,
    **opts: Any,
) -> tuple[Result, Events]:
    """Run a strategy to its Result the way `ponder ask` drives it; `interrupt_at` throws
    a KeyboardInterrupt in at that event, as Ctrl-C during rendering would."""
    loaded = Loaded(engine, "prompted", "scripted-model")
    kwargs: dict[str, Any] = {"budget": budget, "seconds": seconds}
    if clock is not None:
        kwargs["clock"] = clock
    task = make_task(question, loaded, Sampling(), **kwargs)
    run = run_plan(task, make_plan(None, name, {k: str(v) for k, v in opts.items()}))
    events: Events = []
    pending: BaseException | None = None
    while True:
        try:
            event = run.throw(pending) if pending else next(run)
        except StopIteration as stop:
            return stop.value, events
        pending = None
        events.append(event)
        if interrupt_at is not None and len(events) == interrupt_at:
            pending = KeyboardInterrupt()


def think(answer: str | int, words: int = 3, logprob: float = -0.1) -> Script:
    """A chain that thinks `words` words, closes its thinking and boxes `answer`."""
    return Script("<think>" + " hmm" * words + f" </think> The answer is \\boxed{{{answer}}}",
                  logprob)


def long_chain(words: int = 40) -> Script:
    return Script("<think>" + " hmm" * words + " </think> \\boxed{3}")


def done_events(events: Events) -> list[ChainDone]:
    return [e for e in events if isinstance(e, ChainDone)]


# ---------------------------------------------------------------------------------------
# Fake engines for batch runs


class InterruptingEngine(ScriptedEngine):
    """Raises KeyboardInterrupt (as Ctrl-C would) after `after` events of generation `nth`."""

    def __init__(self, outputs: list[str], nth: int, after: int) -> None:
        super().__init__(outputs)
        self.nth, self.after, self.calls = nth, after, 0

    def start(self, prompt: str, sampling: Sampling, n: int = 1,
              budget: int | None = None) -> ScriptedGeneration:
        gen = super().start(prompt, sampling, n, budget)
        self.calls += 1
        return _Interrupted(gen, self.after) if self.calls == self.nth else gen


class _Interrupted(ScriptedGeneration):
    def __init__(self, gen: ScriptedGeneration, after: int) -> None:
        self.__dict__.update(gen.__dict__)
        self._after = after

    def __iter__(self) -> Iterator[EngineEvent]:
        for i, event in enumerate(super().__iter__()):
            if i == self._after:
                raise KeyboardInterrupt
            yield event


class EchoEngine(ScriptedEngine):
    """Answers with the first number of the question; each call has its own script, so it
    is safe to use from several threads (it declares thread_safe like a server engine)."""

    thread_safe = True

    def __init__(self, delay: float = 0.0, capacity: int = 8) -> None:
        super().__init__(capacity=capacity)
        self.delay = delay
        self.active = 0
        self.most = 0
        self._lock = threading.Lock()

    def start(self, prompt: str, sampling: Sampling, n: int = 1,
              budget: int | None = None) -> ScriptedGeneration:
        question = prompt.split("<|user|>\n")[-1].split("\n<|assistant|>")[0]
        number = re.findall(r"\d+", question)[0]
        return _Slow(self, ScriptedEngine([f"<think>so {number}</think>\\boxed{{{number}}}"])
                     .start(prompt, sampling, n, budget))


class _Slow(ScriptedGeneration):
    def __init__(self, owner: EchoEngine, gen: ScriptedGeneration) -> None:
        self.__dict__.update(gen.__dict__)
        self._owner = owner

    def __iter__(self) -> Iterator[EngineEvent]:
        with self._owner._lock:
            self._owner.active += 1
            self._owner.most = max(self._owner.most, self._owner.active)
        try:
            for event in super().__iter__():
                time.sleep(self._owner.delay)
                yield event
        finally:
            with self._owner._lock:
                self._owner.active -= 1


# ---------------------------------------------------------------------------------------
# Records and plots


def rec(pid: str, status: str = "ok", tokens: int = 100, seconds: float = 1.0,
        reference: str | None = "1", correct: bool | None = True, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "status": status, "tokens": tokens, "seconds": seconds,
            "reference": reference, "correct": correct, **extra}


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGB pixels of a PNG written by ponder.plot (read by matplotlib)."""
    from matplotlib.image import imread

    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = imread(io.BytesIO(data), format="png")
    rgb = (image[..., :3] * 255).round().astype("uint8")
    height, width = rgb.shape[:2]
    return width, height, rgb.tobytes()


def check_plot(data: bytes, n_points: int) -> None:
    assert 2_000 < len(data) < 2_000_000
    width, height, pixels = decode_png(data)
    assert 400 <= width <= 2000 and 300 <= height <= 2000
    colors = {pixels[i : i + 3] for i in range(0, len(pixels), 3)}
    assert len(colors) > 4
    ink = sum(1 for i in range(0, len(pixels), 3) if pixels[i : i + 3] != b"\xff\xff\xff")
    assert 0.01 < ink / (width * height) < 0.5
    for color in PALETTE[:n_points]:
        assert bytes(color) in colors


# ---------------------------------------------------------------------------------------
# the run log, for chains that build on logged ones


@pytest.fixture
def log(tmp_path: Path) -> Iterator[RunLog]:
    """A run log in a temporary file; the test fails if the log ever reported a failure."""
    notes: list[str] = []
    runlog = RunLog("test", Switches(), notes.append, tmp_path / "log.db")
    yield runlog
    assert notes == []  # the log never failed
    runlog.close()


def log_memory(log: RunLog, question: str = "What is 2 + 2?", reuse: bool = True
               ) -> LogMemory:
    """A new run's chain memory in `log` (model fingerprint "fingerprint")."""
    store = log.store
    assert store is not None
    run_id = store.add_run({"status": "running", "command": "test", "question": question,
                            "model": "spy", "strategy": "test", "settings": {},
                            "sampling": {}, "seed": 0})
    return LogMemory(log, run_id, "fingerprint", reuse)
