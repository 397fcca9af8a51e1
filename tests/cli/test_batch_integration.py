"""`ponder solve` and `ponder eval` end to end on the real SmolLM2-135M GGUF (integration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from tests.conftest import check_plot
from tests.models import smollm2_path

pytestmark = pytest.mark.integration
runner = CliRunner()

PROBLEMS = [("add", "What is 2 + 3?", "5"), ("mul", "What is 4 times 6?", "24"),
            ("sub", "What is 10 minus 7?", "3")]


@pytest.fixture(scope="module")
def model() -> Path:
    return smollm2_path()


@pytest.fixture
def problems(tmp_path: Path) -> Path:
    path = tmp_path / "three.jsonl"
    path.write_text("".join(json.dumps({"id": i, "question": q, "answer": a}) + "\n"
                            for i, q, a in PROBLEMS), encoding="utf-8")
    return path


def test_solve_three_problems_then_resume_does_nothing(
    model: Path, problems: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    args = ["solve", str(problems), "--model", str(model), "--effort", "low", "--budget", "48",
            "--seed", "3", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8").splitlines()
    by_id = {r["id"]: r for r in map(json.loads, lines)}
    assert len(lines) == 3 and sorted(by_id) == ["add", "mul", "sub"]  # in finishing order
    for problem_id, question, reference in PROBLEMS:
        r = by_id[problem_id]
        assert r["status"] == "ok" and r["question"] == question
        assert r["reference"] == reference and isinstance(r["correct"], bool)
        assert 0 < r["tokens"] <= 48 and r["seconds"] > 0
        assert r["model"] and r["strategy"] == "cot"
    assert "3 in all, 3 answered" in result.stderr
    assert "(95% CI" in result.stderr

    before = out.read_bytes()
    again = runner.invoke(app, [*args, "--resume"])
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.stderr
    assert out.read_bytes() == before


def test_eval_two_efforts_with_plot(model: Path, problems: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "eval.jsonl", tmp_path / "scaling.png"
    result = runner.invoke(app, ["eval", str(problems), "--model", str(model), "--effort",
                                 "low,medium", "--limit", "2", "--budget", "32",
                                 "--out", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "low" in result.stdout and "medium" in result.stdout and "95% CI" in result.stdout
    saved = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["config"] for r in saved] == ["low", "low", "medium", "medium"]
    assert sorted((r["config"], r["id"]) for r in saved) == [
        ("low", "add"), ("low", "mul"), ("medium", "add"), ("medium", "mul")]
    check_plot(plot.read_bytes(), 2)
