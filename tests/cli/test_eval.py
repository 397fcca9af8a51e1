"""Evaluation statistics, the scaling plot (PNG and terminal) and `ponder eval`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from ponder.engines import Loaded, register_engine
from ponder.engines.scripted import ScriptedEngine
from ponder.errors import InputError
from ponder.evaluation import wilson
from tests.conftest import check_plot, rec

runner = CliRunner()


def right(n: int, thinking_words: int = 2) -> str:
    return "<think>" + " hmm" * thinking_words + f"</think>\\boxed{{{n}}}"


# ---------------------------------------------------------------------------------------
# ponder eval


def problems_file(tmp_path: Path, n: int = 3) -> Path:
    path = tmp_path / "dev.jsonl"
    lines = [json.dumps({"id": f"p{i}", "question": f"What is {i}?", "answer": str(i)})
             for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_eval_compares_efforts(scripted: ScriptedEngine, tmp_path: Path) -> None:
    scripted.enqueue(right(0), right(9), right(9),                  # low: 1 of 3
                     right(0, 20), right(0, 20), right(1, 20),      # medium: 3 of 3,
                     right(1, 20), right(2, 20), right(2, 20))      # two agreeing chains each
    out, plot = tmp_path / "eval.jsonl", tmp_path / "plot.png"
    result = runner.invoke(app, ["eval", str(problems_file(tmp_path)), "--effort", "low,medium",
                                 "--out", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "low" in result.stdout and "medium" in result.stdout
    assert "33.3%" in result.stdout and "100.0%" in result.stdout
    assert "6.1–79.2%" in result.stdout and "43.9–100.0%" in result.stdout
    assert "mean tokens per question" in result.stdout
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["config"] for r in records] == ["low"] * 3 + ["medium"] * 3
    assert [r["correct"] for r in records] == [True, False, False, True, True, True]
    assert records[0]["effort"] == "low" and records[3]["effort"] == "medium"
    check_plot(plot.read_bytes(), 2)
    assert f"plot written to {plot}" in result.stderr

    redraw = runner.invoke(app, ["eval", "--report", str(out), "--plot",
                                 str(tmp_path / "again.png")])
    assert redraw.exit_code == 0, redraw.output
    assert redraw.stdout == result.stdout
    assert (tmp_path / "again.png").read_bytes() == plot.read_bytes()


def test_eval_json_summary(scripted: ScriptedEngine, tmp_path: Path) -> None:
    scripted.enqueue(right(0), right(1), right(5))
    result = runner.invoke(app, ["eval", str(problems_file(tmp_path)), "--json",
                                 "--strategy", "cot", "--limit", "3"])
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert row["config"] == "cot" and row["correct"] == 2 and row["scored"] == 3
    assert row["ci95"] == pytest.approx(list(wilson(2, 3)))


def test_eval_crosses_efforts_and_strategies(scripted: ScriptedEngine, tmp_path: Path) -> None:
    scripted.enqueue(*[right(0)] * 4)
    result = runner.invoke(app, ["eval", str(problems_file(tmp_path, 1)), "-e", "low,high",
                                 "-s", "cot", "--json"])
    labels = [json.loads(line)["config"] for line in result.stdout.splitlines()]
    assert labels == ["low/cot", "high/cot"]


def test_eval_resume_runs_only_what_is_missing(scripted: ScriptedEngine, tmp_path: Path) -> None:
    data, out = problems_file(tmp_path), tmp_path / "eval.jsonl"
    low = [{"id": f"p{i}", "config": "low", "status": "ok", "tokens": 5, "seconds": 1.0,
            "reference": str(i), "correct": True, "effort": "low"} for i in range(3)]
    out.write_text("\n".join(json.dumps(r) for r in low) + '\n{"id": "p0", "con',
                   encoding="utf-8")
    scripted.enqueue(right(0), right(0), right(1), right(1), right(2), right(2))
    result = runner.invoke(app, ["eval", str(data), "-e", "low,medium", "--out", str(out),
                                 "--resume", "--json"])
    assert result.exit_code == 0, result.output
    assert len(scripted.prompts) == 6  # medium only: per problem the greedy chain, one sample
    rows = {json.loads(line)["config"]: json.loads(line) for line in result.stdout.splitlines()}
    assert rows["low"]["correct"] == 3 and rows["medium"]["correct"] == 3
    assert len(out.read_text(encoding="utf-8").splitlines()) == 6


def test_duplicate_ids_do_not_hide_results(scripted: ScriptedEngine, tmp_path: Path) -> None:
    data = tmp_path / "dup.jsonl"
    data.write_text('{"id": "a", "question": "What is 1?", "answer": "1"}\n'
                    '{"id": "a", "question": "What is 2?", "answer": "2"}\n', encoding="utf-8")
    scripted.enqueue(right(1))
    result = runner.invoke(app, ["eval", str(data), "--json"])
    row = json.loads(result.stdout)
    assert (row["ran"], row["errors"], row["correct"], row["scored"]) == (1, 1, 1, 1)


def test_eval_without_references_has_no_chart(scripted: ScriptedEngine, tmp_path: Path) -> None:
    data = tmp_path / "q.txt"
    data.write_text("What is 1?\nWhat is 2?\n", encoding="utf-8")
    scripted.enqueue(right(1), right(2))
    result = runner.invoke(app, ["eval", str(data)])
    assert result.exit_code == 0, result.output
    assert "no reference answers" in result.stderr
    assert "default" in result.stdout


def test_eval_checks_configurations_before_loading(tmp_path: Path) -> None:
    def explode(_options: object) -> Loaded:
        raise AssertionError("the model must not be loaded")

    register_engine("never", explode)
    data = problems_file(tmp_path)
    for args, message in [
        (["-e", "low,,high"], "has an empty item"),
        (["-e", "low,extreme"], "unknown effort 'extreme'"),
        (["-s", "cott"], "did you mean cot?"),
        (["--limit", "0"], "--limit must be at least 1"),
    ]:
        result = runner.invoke(app, ["eval", str(data), "--engine", "never", *args])
        assert isinstance(result.exception, InputError), (args, result.output)
        assert message in str(result.exception)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval"], "no data file given"),
        (["eval", "data.jsonl", "--report", "r.jsonl"], "not both"),
        (["eval", "--report", "/nonexistent/r.jsonl"], "cannot read /nonexistent/r.jsonl"),
    ],
)
def test_eval_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert isinstance(result.exception, InputError)
    assert message in str(result.exception)


def test_report_of_an_empty_or_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "r.jsonl"
    broken.write_text("not json\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "--report", str(broken)])
    assert isinstance(result.exception, InputError)
    assert "no records in" in str(result.exception)


def test_report_skips_unreadable_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec("a", config="low")) + "\n{broken\n", encoding="utf-8")
    result = runner.invoke(app, ["eval", "--report", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable line" in result.stderr
    assert json.loads(result.stdout)["correct"] == 1
