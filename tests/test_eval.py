"""Evaluation statistics, the scaling plot (PNG and terminal) and `ponder eval`."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from ponder.cli import app
from ponder.engines import Loaded, register_engine
from ponder.engines.scripted import ScriptedEngine
from ponder.errors import InputError
from ponder.evaluation import (
    Summary,
    eval_table,
    latest,
    run_table,
    summarize,
    summarize_all,
    wilson,
)
from ponder.plot import PALETTE, LogScale, Point, points_from, render_png, terminal_chart

runner = CliRunner()


def right(n: int, thinking_words: int = 2) -> str:
    return "<think>" + " hmm" * thinking_words + f"</think>\\boxed{{{n}}}"


# ---------------------------------------------------------------------------------------
# Statistics


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(5, 10, 0.2366, 0.7634), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0),
     (1, 1, 0.2065, 1.0), (81, 100, 0.7222, 0.8749)],
)
def test_wilson_interval_known_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-4)
    assert hi == pytest.approx(high, abs=1e-4)


def test_wilson_rejects_empty_samples() -> None:
    with pytest.raises(ValueError):
        wilson(0, 0)
    with pytest.raises(ValueError):
        wilson(3, 2)


def rec(pid: str, status: str = "ok", tokens: int = 100, seconds: float = 1.0,
        reference: str | None = "1", correct: bool | None = True, **extra: Any) -> dict[str, Any]:
    return {"id": pid, "status": status, "tokens": tokens, "seconds": seconds,
            "reference": reference, "correct": correct, **extra}


def test_summary_arithmetic() -> None:
    records = [
        rec("a", tokens=100, seconds=2.0, correct=True),
        rec("b", tokens=300, seconds=4.0, correct=False),
        rec("c", tokens=200, seconds=3.0, correct=True),
        rec("d", status="error", tokens=0, seconds=0.0, correct=False),
        rec("e", status="interrupted", tokens=50, correct=True),
        rec("f", tokens=400, seconds=1.0, reference=None, correct=None),
    ]
    s = summarize(records, "low")
    assert (s.problems, s.ran, s.errors, s.interrupted) == (6, 4, 1, 1)
    assert (s.scored, s.correct) == (4, 2)
    assert s.accuracy == 0.5
    assert s.interval == wilson(2, 4)
    assert s.mean_tokens == (100 + 300 + 200 + 400) / 4
    assert s.mean_seconds == pytest.approx(10.0 / 4)
    assert s.tokens_per_correct == (100 + 300 + 200) / 2
    data = s.to_json()
    assert data["config"] == "low" and data["ci95"] == list(wilson(2, 4))


def test_summary_without_references_or_correct_answers() -> None:
    none = summarize([rec("a", reference=None, correct=None)])
    assert none.accuracy is None and none.interval is None and none.tokens_per_correct is None
    wrong = summarize([rec("a", correct=False)])
    assert wrong.accuracy == 0.0 and wrong.tokens_per_correct is None
    empty = summarize([])
    assert empty.mean_tokens is None and empty.mean_seconds is None


def test_latest_record_per_config_and_id_wins() -> None:
    records = [rec("a", config="low", correct=False), rec("a", config="high"),
               rec("a", config="low", correct=True)]
    kept = latest(records)
    assert len(kept) == 2
    by_config = {s.label: s for s in summarize_all(records)}
    assert by_config["low"].correct == 1 and by_config["high"].correct == 1


def test_eval_table_rows() -> None:
    summaries = [summarize([rec("a"), rec("b", correct=False)], "low"),
                 summarize([rec("a", tokens=900)], "high")]
    console = Console(width=120, record=True, force_terminal=False)
    console.print(eval_table(summaries, plain=True))
    text = console.export_text()
    assert "low" in text and "50.0%" in text and "9.5–90.5%" in text
    assert "high" in text and "100.0%" in text and "900.0" in text


def test_run_table_rate_counts_problems_solved_side_by_side_once() -> None:
    """Four problems of 10 s each, solved at once in 10 s: 40 tokens/s, not 10."""
    earlier = [rec("old", tokens=1000, seconds=5.0)]
    this_run = [rec(f"p{i}", tokens=100, seconds=10.0) for i in range(4)]
    console = Console(width=120, record=True, force_terminal=False)
    console.print(run_table(summarize(earlier + this_run), elapsed=10.0, run_tokens=400,
                            skipped=1, plain=True))
    text = console.export_text()
    assert "40.0 tokens/s" in text and "9.00s per problem" in text
    assert "5 in all, 5 answered, 1 from an earlier run" in text


# ---------------------------------------------------------------------------------------
# Plot


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        kind, body = data[i + 4 : i + 8], data[i + 8 : i + 8 + length]
        (crc,) = struct.unpack(">I", data[i + 8 + length : i + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        chunks.append((kind, body))
        i += 12 + length
    return chunks


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and RGB pixels of a PNG written by ponder.plot (filter 0 rows)."""
    chunks = png_chunks(data)
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, color, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, color) == (8, 2)
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = 1 + 3 * width
    assert len(raw) == height * stride
    rows = [raw[y * stride + 1 : (y + 1) * stride] for y in range(height)]
    assert all(raw[y * stride] == 0 for y in range(height))
    return width, height, b"".join(rows)


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


def test_png_plot_is_a_valid_image_with_the_points() -> None:
    points = [Point("low", 120, 0.3, 0.1, 0.6), Point("medium", 480, 0.5, 0.3, 0.7),
              Point("high", 2100, 0.8, 0.6, 0.9)]
    check_plot(render_png(points), 3)


def test_png_plot_single_point_and_empty() -> None:
    check_plot(render_png([Point("only", 50, 1.0, 0.2, 1.0)]), 1)
    data = render_png([])
    width, height, _ = decode_png(data)
    assert (width, height) == (880, 560)


def test_points_need_an_accuracy_and_tokens() -> None:
    with_refs = summarize([rec("a", tokens=10)], "a")
    no_refs = summarize([rec("a", reference=None, correct=None)], "b")
    no_tokens = summarize([rec("a", tokens=0)], "c")
    assert [p.label for p in points_from([with_refs, no_refs, no_tokens])] == ["a"]


def test_log_scale_ticks() -> None:
    scale = LogScale.fit([100, 1000])
    ticks = scale.ticks()
    assert 100 in ticks and 1000 in ticks and 200 in ticks
    assert all(scale.lo <= __import__("math").log10(t) <= scale.hi for t in ticks)
    narrow = LogScale.fit([300, 320]).ticks()
    assert len(narrow) >= 3


def test_terminal_chart_marks_every_point() -> None:
    points = [Point("low", 120, 0.25, 0.1, 0.5), Point("high", 2000, 0.75, 0.5, 0.9)]
    text = terminal_chart(points, width=40, height=11).plain
    assert "100% ┤" in text and "50% ┤" in text and "0% ┤" in text
    assert "1 low: 25.0%" in text and "2 high: 75.0%" in text
    lines = text.splitlines()
    assert any("1" in line[7:] for line in lines[1:12])
    assert "mean tokens per question" in text


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
    assert len(scripted.prompts) == 3
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


def test_summary_type_is_frozen() -> None:
    s = Summary("x")
    with pytest.raises(AttributeError):
        s.correct = 3  # type: ignore[misc]
