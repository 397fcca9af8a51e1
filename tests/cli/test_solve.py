"""`ponder solve` through Typer's CliRunner with scripted engines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from ponder.engines import Loaded, register_engine
from ponder.engines.scripted import ScriptedEngine
from ponder.errors import InputError
from tests.conftest import EchoEngine, InterruptingEngine

runner = CliRunner()


def right(n: int) -> str:
    return f"<think>it is {n}</think>The answer is \\boxed{{{n}}}."


def data(tmp_path: Path, n: int = 3, name: str = "dev.jsonl") -> Path:
    path = tmp_path / name
    lines = [json.dumps({"id": f"p{i}", "question": f"What is {i}?", "answer": str(i)})
             for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def use(engine: ScriptedEngine, name: str = "test") -> list[str]:
    register_engine(name, lambda _options: Loaded(engine, "prompted", "test-model"))
    return ["--engine", name]


def test_records_on_stdout_progress_and_summary_on_stderr(
    scripted: ScriptedEngine, tmp_path: Path
) -> None:
    scripted.enqueue(right(0), right(7), right(2))
    result = runner.invoke(app, ["solve", str(data(tmp_path)), "--effort", "low"])
    assert result.exit_code == 0, result.output
    out = records(result.stdout)
    assert [r["id"] for r in out] == ["p0", "p1", "p2"]
    assert [r["correct"] for r in out] == [True, False, True]
    assert out[1]["answer"] == "7" and out[1]["reference"] == "1"
    assert all(r["strategy"] == "cot" and r["effort"] == "low" for r in out)
    assert all(r["tokens"] > 0 and r["seconds"] >= 0 for r in out)
    assert "[solving 2/3] p1: answer 7 (wrong, reference 1)" in result.stderr
    assert "acc 2/3" in result.stderr
    assert "2/3 = 66.7% (95% CI 20.8–93.9%)" in result.stderr
    assert "\x1b[" not in result.stderr


def test_out_file_limit_and_resume_does_nothing_when_complete(
    scripted: ScriptedEngine, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    scripted.enqueue(right(0), right(1))
    args = ["solve", str(data(tmp_path, 5)), "--limit", "2", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert [r["id"] for r in records(out.read_text(encoding="utf-8"))] == ["p0", "p1"]

    def explode(_options: object) -> Loaded:
        raise AssertionError("nothing to do: the model must not be loaded")

    register_engine("never", explode)
    again = runner.invoke(app, [*args, "--resume", "--engine", "never"])
    assert again.exit_code == 0, again.output
    assert "nothing to do: all 2 problems are already in" in again.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2

    scripted.enqueue(right(2))
    more = runner.invoke(app, ["solve", str(data(tmp_path, 5)), "--limit", "3", "--out",
                               str(out), "--resume"])
    assert more.exit_code == 0, more.output
    assert [r["id"] for r in records(out.read_text(encoding="utf-8"))] == ["p0", "p1", "p2"]
    assert "2 from an earlier run" in more.stderr


def test_resume_after_a_crash_with_a_truncated_last_line(
    scripted: ScriptedEngine, tmp_path: Path
) -> None:
    out = tmp_path / "r.jsonl"
    first = {"id": "p0", "status": "ok", "answer": "0", "reference": "0", "correct": True,
             "tokens": 4, "seconds": 0.5}
    out.write_text(json.dumps(first) + '\n{"id": "p1", "status": "ok", "answ',
                   encoding="utf-8")
    scripted.enqueue(right(1), right(2))
    result = runner.invoke(app, ["solve", str(data(tmp_path)), "--out", str(out), "--resume",
                                 "--effort", "low"])
    assert result.exit_code == 0, result.output
    saved = records(out.read_text(encoding="utf-8"))
    assert [r["id"] for r in saved] == ["p0", "p1", "p2"]
    assert saved[0] == first
    assert len(scripted.prompts) == 2
    assert "3/3 = 100.0%" in result.stderr


def test_ctrl_c_writes_the_record_in_flight_and_resume_redoes_it(tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    long = "<think>" + " step" * 40 + "</think>\\boxed{1}"
    engine = InterruptingEngine([right(0), long], nth=2, after=6)
    args = ["solve", str(data(tmp_path)), "--out", str(out), "--effort", "low"]
    result = runner.invoke(app, [*args, *use(engine)])
    assert result.exit_code == 130, result.output
    saved = records(out.read_text(encoding="utf-8"))
    assert [(r["id"], r["status"]) for r in saved] == [("p0", "ok"), ("p1", "interrupted")]
    assert f"interrupted; continue with --resume --out {out}" in result.stderr
    assert "1 interrupted" in result.stderr

    fresh = ScriptedEngine([right(1), right(2)])
    again = runner.invoke(app, [*args, "--resume", *use(fresh)])
    assert again.exit_code == 0, again.output
    saved = records(out.read_text(encoding="utf-8"))
    assert [(r["id"], r["status"]) for r in saved] == [("p0", "ok"), ("p1", "ok"), ("p2", "ok")]


def test_error_records_keep_the_run_going(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([
        json.dumps({"id": "ok1", "question": "What is 1?", "answer": "1"}),
        "{oops",
        json.dumps({"id": "empty", "question": "", "answer": "1"}),
        json.dumps({"id": "long", "question": "word " * 200, "answer": "1"}),
        json.dumps({"id": "ok2", "question": "What is 2?", "answer": "2"}),
    ]) + "\n", encoding="utf-8")
    engine = ScriptedEngine([right(1), right(2)], context_length=120)
    result = runner.invoke(app, ["solve", str(path), "--effort", "low", *use(engine)])
    assert result.exit_code == 0, result.output
    out = {r["id"]: r for r in records(result.stdout)}
    assert list(out) == ["ok1", "2", "empty", "long", "ok2"]
    assert out["2"]["status"] == "error" and "malformed JSON" in out["2"]["error"]
    assert out["empty"]["error"] == "line 3: empty problem"
    assert "the model's context holds 120" in out["long"]["error"]
    assert out["ok2"]["correct"] is True
    assert "5 in all, 2 answered, 3 errors" in result.stderr
    assert "2/4 = 50.0%" in result.stderr


def test_text_input_from_stdin(scripted: ScriptedEngine) -> None:
    scripted.enqueue(right(5), right(6))
    result = runner.invoke(app, ["solve", "-", "-e", "low"], input="What is 5?\nWhat is 6?\n")
    assert result.exit_code == 0, result.output
    out = records(result.stdout)
    assert [(r["id"], r["answer"], r["reference"]) for r in out] == [
        ("1", "5", None), ("2", "6", None)]
    assert "What is 5?" in scripted.prompts[0]
    assert "accuracy" not in result.stderr


def test_csv_with_a_chosen_field(scripted: ScriptedEngine, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("id,problem,answer\nx,What is 3?,3\n", encoding="utf-8")
    scripted.enqueue(right(3))
    result = runner.invoke(app, ["solve", str(path), "--field", "problem"])
    assert result.exit_code == 0, result.output
    (record,) = records(result.stdout)
    assert record["id"] == "x" and record["correct"] is True


def test_concurrency_on_a_local_engine_runs_in_turn(
    scripted: ScriptedEngine, tmp_path: Path
) -> None:
    scripted.enqueue(right(0), right(1), right(2))
    result = runner.invoke(app, ["solve", str(data(tmp_path)), "--concurrency", "4"])
    assert result.exit_code == 0, result.output
    assert [r["id"] for r in records(result.stdout)] == ["p0", "p1", "p2"]
    assert "--concurrency 4 runs them in turn" in result.stderr


def test_concurrency_on_a_thread_safe_engine(tmp_path: Path) -> None:
    engine = EchoEngine(delay=0.002)
    result = runner.invoke(app, ["solve", str(data(tmp_path, 8)), "--concurrency", "4",
                                 *use(engine)])
    assert result.exit_code == 0, result.output
    out = records(result.stdout)
    assert sorted(r["id"] for r in out) == [f"p{i}" for i in range(8)]
    assert all(r["correct"] for r in out)
    assert engine.most > 1
    assert "runs them in turn" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent/p.jsonl"], "cannot read /nonexistent/p.jsonl"),
        (["{dir}/p.xml"], "unknown format for p.xml"),
        (["{dir}/p.jsonl", "--field", "problem"], "no line has a 'problem' field"),
        (["{dir}/p.jsonl", "--limit", "0"], "--limit must be at least 1"),
        (["{dir}/p.jsonl", "--concurrency", "lots"], "not a positive number or 'auto'"),
        (["{dir}/p.jsonl", "--resume"], "--resume needs --out FILE"),
        (["{dir}/p.jsonl", "--out", "{dir}/old.jsonl"], "already holds results"),
        (["{dir}/p.jsonl", "--out", "{dir}/p.jsonl", "--overwrite"], "is the input file"),
        (["{dir}/p.jsonl", "--effort", "extreme"], "unknown effort 'extreme'"),
        (["{dir}/p.jsonl", "--time", "soon"], "is not a duration"),
    ],
)
def test_bad_input_is_one_domain_error(tmp_path: Path, args: list[str], message: str) -> None:
    def explode(_options: object) -> Loaded:
        raise AssertionError("bad input must be caught before the model loads")

    register_engine("never", explode)
    data(tmp_path, 2, "p.jsonl")
    (tmp_path / "p.xml").write_text("<q/>", encoding="utf-8")
    (tmp_path / "old.jsonl").write_text('{"id": "a"}\n', encoding="utf-8")
    argv = ["solve", *(a.replace("{dir}", str(tmp_path)) for a in args), "--engine", "never"]
    result = runner.invoke(app, argv)
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError), result.output
    assert message in str(result.exception)
    assert result.stdout == ""


def test_command_line_error_is_one_line_without_traceback(tmp_path: Path) -> None:
    env = {"PONDER_HOME": str(tmp_path), "PONDER_CONFIG": str(tmp_path / "c.toml"),
           "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "ponder", "solve", str(tmp_path / "no.jsonl")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        f"ponder: error: cannot read {tmp_path / 'no.jsonl'}: No such file or directory"]
