"""`ponder chat` driven through stdin with the scripted engine."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from ponder.cli.chat import line_reader
from ponder.engines import EngineOptions, Loaded, register_engine
from ponder.engines.scripted import ScriptedEngine

runner = CliRunner()


@pytest.fixture
def engine(scripted: ScriptedEngine) -> Iterator[ScriptedEngine]:
    """The scripted engine; `--model X` / `/model X` load it under the id X."""
    scripted.fingerprint = "model-file"

    def factory(options: EngineOptions) -> Loaded:
        return Loaded(scripted, "prompted", options.model or "scripted-model")

    register_engine("scripted", factory)
    yield scripted


def chat(lines: list[str], *args: str) -> tuple[str, str]:
    """A chat at effort low (one chain per turn) unless `args` say otherwise."""
    result = runner.invoke(app, ["chat", "-e", "low", *args], input="\n".join(lines) + "\n")
    assert result.exit_code == 0, result.output
    return result.stdout, result.stderr


def runs(home: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(home / "log.db")
    return db.execute("SELECT conversation, turn, question, model, effort, answer "
                      "FROM runs ORDER BY id").fetchall()


def test_turns_carry_the_answers_but_not_the_thinking(engine: ScriptedEngine,
                                                      ponder_home: Path) -> None:
    engine.enqueue("<think>secret sums</think>It is \\boxed{4}.",
                   "<think>more secrets</think>Then \\boxed{8}.")
    stdout, _ = chat(["What is 2 + 2?", "And twice that?"])
    assert stdout == "It is \\boxed{4}.\nThen \\boxed{8}.\n"
    second = engine.prompts[1]
    assert "What is 2 + 2?" in second and "It is \\boxed{4}." in second
    assert "secret sums" not in second
    assert second.index("It is \\boxed{4}.") < second.index("And twice that?")
    logged = runs(ponder_home)
    assert [row[1:3] for row in logged] == [(1, "What is 2 + 2?"), (2, "And twice that?")]
    assert logged[0][0] == logged[1][0] and logged[0][0]
    assert [row[5] for row in logged] == ["4", "8"]


def test_effort_and_model_change_inside_the_chat(engine: ScriptedEngine,
                                                 ponder_home: Path) -> None:
    engine.enqueue("\\boxed{1}", "\\boxed{2}")
    _, stderr = chat(["/effort low", "one?", "/model other-model", "two?", "/exit",
                      "never asked?"])
    assert "effort low (cot)" in stderr and "now talking to other-model" in stderr
    assert [(row[3], row[4]) for row in runs(ponder_home)] == [
        ("scripted-model", "low"), ("other-model", "low")]
    assert len(engine.prompts) == 2


def test_mistakes_are_one_line_and_the_chat_goes_on(engine: ScriptedEngine) -> None:
    engine.enqueue("\\boxed{3}")
    stdout, stderr = chat(["/effort extreme", "/frobnicate", "three?"])
    assert "unknown effort 'extreme'" in stderr
    assert "unknown command '/frobnicate'" in stderr
    assert stdout == "\\boxed{3}\n"


def test_clear_starts_a_new_conversation(engine: ScriptedEngine, ponder_home: Path) -> None:
    engine.enqueue("\\boxed{1}", "\\boxed{2}")
    chat(["first?", "/clear", "second?"])
    assert "first?" not in engine.prompts[1]
    logged = runs(ponder_home)
    assert logged[0][0] != logged[1][0] and [row[1] for row in logged] == [1, 1]


def test_a_repeated_turn_is_answered_from_the_log(engine: ScriptedEngine) -> None:
    engine.enqueue("\\boxed{5}")
    chat(["five?"])
    stdout, stderr = chat(["five?"])
    assert stdout == "\\boxed{5}\n" and "answered from the log" in stderr
    assert len(engine.prompts) == 1


def test_no_log_writes_nothing(engine: ScriptedEngine, ponder_home: Path) -> None:
    engine.enqueue("\\boxed{6}")
    stdout, _ = chat(["six?"], "--no-log")
    assert stdout == "\\boxed{6}\n"
    assert not (ponder_home / "log.db").exists()


def test_the_line_reader_keeps_a_history_file(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    answers: list[object] = ["hello", KeyboardInterrupt(), EOFError()]

    def fake_input(prompt: str = "") -> str:
        item = answers.pop(0)
        if isinstance(item, BaseException):
            raise item
        return str(item)

    monkeypatch.setattr("builtins.input", fake_input)
    history = tmp_path / "chat_history"
    with line_reader(True, history) as read:
        assert read("> ") == "hello"
        assert read("> ") is None  # Ctrl-C gives a fresh prompt; Ctrl-D ends
    assert history.exists()
