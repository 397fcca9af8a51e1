"""Shared fixtures: a queued scripted engine, a capture console, an isolated ponder home."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from ponder.engines import Loaded, register_engine
from ponder.engines.scripted import ScriptedEngine


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
