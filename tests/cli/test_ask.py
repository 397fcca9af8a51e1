"""`ponder ask` through Typer's CliRunner with the scripted engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from ponder.engines.scripted import ScriptedEngine
from ponder.errors import InputError

runner = CliRunner()
ANSWER = "<think>17 times 24: 17*20=340, 17*4=68, total 408.</think>The product is \\boxed{408}."


def test_answer_on_stdout_thinking_summary_on_stderr(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER)
    result = runner.invoke(app, ["ask", "--effort", "low", "What is 17 * 24?"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "The product is \\boxed{408}.\n"
    assert "Thought for" in result.stderr
    assert "17 times 24" in result.stderr
    assert "\x1b[" not in result.stdout


def test_question_from_stdin(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER)
    result = runner.invoke(app, ["ask"], input="What is 17 * 24?\n")
    assert result.exit_code == 0
    assert "What is 17 * 24?" in scripted.prompts[0]


def test_question_from_file(scripted: ScriptedEngine, tmp_path: Path) -> None:
    scripted.enqueue(ANSWER)
    problem = tmp_path / "problem.txt"
    problem.write_text("What is 17 * 24?", encoding="utf-8")
    result = runner.invoke(app, ["ask", "--file", str(problem), "--effort", "high"])
    assert result.exit_code == 0
    assert "What is 17 * 24?" in scripted.prompts[0]


def test_json_output(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER)
    result = runner.invoke(app, ["ask", "--json", "--effort", "low", "What is 17 * 24?"])
    assert result.exit_code == 0
    record = json.loads(result.stdout)
    assert record["answer"] == "408"
    assert record["question"] == "What is 17 * 24?"
    assert record["text"] == "The product is \\boxed{408}."
    assert record["thinking"].startswith("17 times 24")
    assert record["model"] == "scripted-model"
    assert record["strategy"] == "cot" and record["effort"] == "low"
    assert record["settings"]["think_cap"] == 1024
    assert isinstance(record["run"], dict)
    assert record["finish_reason"] == "eos"
    usage = record["usage"]
    assert usage["completion_tokens"] == scripted.tokens_generated
    assert 0 < usage["thinking_tokens"] < usage["completion_tokens"]
    assert usage["prompt_tokens"] > 0
    assert record["seconds"] >= 0


def test_quiet_prints_only_the_answer(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER)
    result = runner.invoke(app, ["ask", "-q", "What is 17 * 24?"])
    assert result.stdout == "408\n"
    assert result.stderr == ""


def test_thinking_full_streams_thinking_to_stderr(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER)
    result = runner.invoke(app, ["ask", "--effort", "low", "--thinking", "full", "q"])
    assert "17*20=340" in result.stderr
    assert "17*20" not in result.stdout


def test_budget_option_caps_tokens(scripted: ScriptedEngine) -> None:
    scripted.enqueue("<think>" + " more" * 100, "\\boxed{5}")
    result = runner.invoke(app, ["ask", "--json", "--budget", "20", "q"])
    record = json.loads(result.stdout)
    assert scripted.tokens_generated <= 20
    assert record["usage"]["completion_tokens"] <= 20
    assert record["answer"] == "5"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "   "], "the question is empty"),
        (["ask", "--effort", "extreme", "q"], "unknown effort 'extreme'"),
        (["ask", "--strategy", "cott", "q"], "did you mean cot?"),
        (["ask", "-o", "think_cap", "q"], "must look like key=value"),
        (["ask", "-o", "think_cap=lots", "q"], "not a valid int"),
        (["ask", "-o", "thinkcap=3", "q"], "did you mean think_cap?"),
        (["ask", "--time", "soon", "q"], "is not a duration"),
        (["ask", "--thinking", "loud", "q"], "summary, full, hidden"),
        (["ask", "--summary", "llm", "q"], "--summary 'llm' is not one of extractive, model"),
        (["ask", "--file", "/nonexistent/problem.txt"], "cannot read /nonexistent/problem.txt"),
    ],
)
def test_bad_input_raises_domain_error(
    scripted: ScriptedEngine, args: list[str], message: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)


def test_question_longer_than_context(scripted: ScriptedEngine) -> None:
    result = runner.invoke(app, ["ask", "word " * 5000])
    assert result.exit_code != 0
    assert "context" in str(result.exception)


def test_interrupt_keeps_partial_output_and_exits_130(
    scripted: ScriptedEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted.enqueue("<think>working on it. still working on it" + " x" * 50)
    calls = {"n": 0}
    from ponder.cli import render

    real_handle = render.Renderer.handle

    def handle(self: render.Renderer, event: object) -> None:
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        real_handle(self, event)  # type: ignore[arg-type]

    monkeypatch.setattr(render.Renderer, "handle", handle)
    result = runner.invoke(app, ["ask", "--json", "q"])
    assert result.exit_code == 130
    record = json.loads(result.stdout)
    assert record["interrupted"] is True
    assert record["finish_reason"] == "interrupted"
    assert "working on it" in record["thinking"]
    assert "interrupted" in result.stderr


def test_main_maps_errors_to_one_line_without_traceback(tmp_path: Path) -> None:
    env = {"PONDER_HOME": str(tmp_path), "PONDER_CONFIG": str(tmp_path / "c.toml"),
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "ponder", "ask", "--model", "no-such-model",
                           "q"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ponder: error:")
    assert "no-such-model" in lines[0]
    assert "Traceback" not in proc.stderr


def test_debug_variable_shows_traceback(tmp_path: Path) -> None:
    env = {"PONDER_HOME": str(tmp_path), "PONDER_CONFIG": str(tmp_path / "c.toml"),
           "PATH": "/usr/bin:/bin", "PONDER_DEBUG": "1"}
    proc = subprocess.run([sys.executable, "-m", "ponder", "ask", "--model", "no-such-model",
                           "q"], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_help_is_fast_and_lists_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "ask" in result.stdout and "models" in result.stdout
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, ponder.cli; print('llama_cpp' in sys.modules)"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.stdout.strip() == "False"


def test_config_file_chooses_the_engine(
    scripted: ScriptedEngine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PONDER_ENGINE")
    (tmp_path / "config.toml").write_text('engine = "scripted"\n', encoding="utf-8")
    scripted.enqueue(ANSWER)
    result = runner.invoke(app, ["ask", "-q", "What is 17 * 24?"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "408\n"


def test_json_reports_samples_votes_and_run_facts(scripted: ScriptedEngine) -> None:
    scripted.enqueue("<think>a</think>\\boxed{18}", "<think>b</think>\\boxed{18.0}",
                     "<think>c</think>\\boxed{20}")
    result = runner.invoke(app, ["ask", "--json", "--strategy", "vote", "-o", "n=3", "q"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["answer"] == "18"
    assert record["votes"] == {"18": 2, "20": 1}
    assert [s["answer"] for s in record["samples"]] == ["18", "18.0", "20"]
    assert record["settings"]["n"] == 3
    assert record["run"]["chains"] == 3
