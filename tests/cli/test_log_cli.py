"""The run log from the command line: ask/solve/eval write it, repeats are answered from
it, `--no-log`/`--no-cache`/the config switch, and `ponder logs ...` (scripted engine)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from ponder.engines.scripted import ScriptedEngine

runner = CliRunner()
QUESTION = "What is 17 * 24?"
ANSWER = "<think>17 times 24 is 408.</think>The product is \\boxed{408}."


@pytest.fixture
def engine(scripted: ScriptedEngine) -> ScriptedEngine:
    """The scripted engine standing for one model file (it has a fingerprint)."""
    scripted.fingerprint = "sha256-of-a-model-file"
    return scripted


def ask(*args: str) -> tuple[dict[str, Any], str]:
    result = runner.invoke(app, ["ask", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stderr


def log_file(home: Path) -> Path:
    return home / "log.db"


def test_a_repeated_question_is_answered_from_the_log(engine: ScriptedEngine) -> None:
    engine.enqueue(ANSWER)
    first, _ = ask("-e", "low", QUESTION)
    second, stderr = ask("-e", "low", QUESTION)
    assert len(engine.prompts) == 1
    assert first["cached"] is False and second["cached"] is True
    assert "answered from the log (run 1" in stderr
    assert second["log_id"] == 2 and first["log_id"] == 1
    same = ("answer", "text", "thinking", "usage", "seconds", "samples", "strategy")
    assert {k: second[k] for k in same} == {k: first[k] for k in same}


def test_what_decides_the_answer_is_part_of_the_cache_key(engine: ScriptedEngine) -> None:
    """Only the same settings are a cache hit; the same sampling reuses the chain."""
    engine.enqueue(ANSWER, ANSWER, ANSWER)
    base = ["-s", "cot", "-t", "0.7"]
    ask(*base, QUESTION)
    for args, reused in ((["-o", "think_cap=100"], 1), (["--budget", "500"], 1),
                         (["--seed", "1"], 0), (["-t", "0.2"], 0)):
        record, _ = ask(*base, *args, QUESTION)
        assert record["cached"] is False, args
        assert record["reuse"]["chains"] == reused, args
    assert len(engine.prompts) == 3


def test_no_cache_runs_afresh_and_is_logged(engine: ScriptedEngine, ponder_home: Path) -> None:
    engine.enqueue(ANSWER, ANSWER)
    ask("-e", "low", QUESTION)
    record, _ = ask("-e", "low", "--no-cache", QUESTION)
    assert record["cached"] is False and len(engine.prompts) == 2
    assert record["reuse"] == {"chains": 0, "tokens_saved": 0}
    rows = sqlite3.connect(log_file(ponder_home)).execute("SELECT status FROM runs").fetchall()
    assert rows == [("done",), ("done",)]


def test_no_log_writes_nothing(engine: ScriptedEngine, ponder_home: Path) -> None:
    engine.enqueue(ANSWER)
    record, _ = ask("--no-log", QUESTION)
    assert record["answer"] == "408" and record["log_id"] is None
    assert not log_file(ponder_home).exists()


def test_the_config_file_turns_the_log_off(engine: ScriptedEngine, ponder_home: Path,
                                           tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[log]\nenabled = false\n", encoding="utf-8")
    engine.enqueue(ANSWER)
    ask(QUESTION)
    assert not log_file(ponder_home).exists()


def test_the_config_file_turns_the_cache_off(engine: ScriptedEngine, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[log]\ncache = false\n", encoding="utf-8")
    engine.enqueue(ANSWER, ANSWER)
    ask("-e", "low", QUESTION)
    record, _ = ask("-e", "low", QUESTION)
    assert record["cached"] is False and len(engine.prompts) == 2


def test_a_bad_log_switch_is_one_clear_error(engine: ScriptedEngine, tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[log]\nenabled = 'no'\n", encoding="utf-8")
    result = runner.invoke(app, ["ask", QUESTION])
    assert result.exit_code != 0
    assert "log.enabled must be true or false" in str(result.exception)


def test_a_broken_log_costs_a_note_not_the_answer(engine: ScriptedEngine, ponder_home: Path
                                                  ) -> None:
    ponder_home.mkdir(parents=True, exist_ok=True)
    log_file(ponder_home).write_bytes(b"this is not a database" * 100)
    engine.enqueue(ANSWER)
    record, stderr = ask(QUESTION)
    assert record["answer"] == "408" and record["log_id"] is None
    assert "going on without the log" in stderr


def test_an_engine_without_a_model_file_is_logged_but_never_cached(
        scripted: ScriptedEngine, ponder_home: Path) -> None:
    scripted.enqueue(ANSWER, ANSWER)
    ask("-e", "low", QUESTION)
    record, _ = ask("-e", "low", QUESTION)
    assert record["cached"] is False and len(scripted.prompts) == 2
    rows = sqlite3.connect(log_file(ponder_home)).execute("SELECT count(*) FROM runs")
    assert rows.fetchone() == (2,)


def test_more_votes_build_on_the_logged_ones(engine: ScriptedEngine) -> None:
    chains = [f"<think>try {i}</think>\\boxed{{408}}" for i in range(4)]
    engine.enqueue(*chains)
    first, _ = ask("-s", "vote", "-o", "n=2", QUESTION)
    second, _ = ask("-s", "vote", "-o", "n=4", QUESTION)
    saved = first["usage"]["completion_tokens"]
    assert second["reuse"] == {"chains": 2, "tokens_saved": saved}
    assert second["usage"]["completion_tokens"] == sum(
        s["tokens"] for s in second["samples"][2:])
    assert len(engine.prompts) == 2


def test_solve_answers_a_logged_question_from_the_log(engine: ScriptedEngine,
                                                      tmp_path: Path) -> None:
    engine.enqueue(ANSWER)
    ask("-e", "low", QUESTION)
    problems = tmp_path / "p.jsonl"
    problems.write_text(json.dumps({"id": "a", "question": QUESTION, "answer": "408"}) + "\n",
                        encoding="utf-8")
    result = runner.invoke(app, ["solve", str(problems), "-e", "low"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["cached"] is True and record["correct"] is True
    assert record["id"] == "a" and len(engine.prompts) == 1


def test_eval_never_builds_on_other_runs(engine: ScriptedEngine, tmp_path: Path) -> None:
    engine.enqueue(*[f"<think>try {i}</think>\\boxed{{408}}" for i in range(6)])
    ask("-s", "vote", "-o", "n=2", QUESTION)
    problems = tmp_path / "p.jsonl"
    problems.write_text(json.dumps({"id": "a", "question": QUESTION, "answer": "408"}) + "\n",
                        encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["eval", str(problems), "-s", "vote", "-o", "n=4",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads(out.read_text(encoding="utf-8"))
    assert record["reuse"] == {"chains": 0, "tokens_saved": 0}
    assert len(engine.prompts) == 2


def test_logs_list_search_show_export(engine: ScriptedEngine) -> None:
    engine.enqueue(ANSWER, "<think>hmm</think>\\boxed{12}")
    ask("-e", "low", QUESTION)
    ask("-e", "low", QUESTION)
    ask("What is 3 * 4?")
    listed = runner.invoke(app, ["logs", "list"])
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["3", "2", "1"]
    assert "cached from 1" in lines[1] and "What is 3 * 4?" in lines[0]
    found = runner.invoke(app, ["logs", "search", "17 *"])
    assert [line.split("\t")[0] for line in found.stdout.splitlines()] == ["2", "1"]
    shown = runner.invoke(app, ["logs", "show", "1"])
    assert shown.exit_code == 0, shown.output
    assert shown.stdout == "The product is \\boxed{408}.\n"
    assert "Thought for" in shown.stderr and "17 times 24 is 408" in shown.stderr
    as_json = json.loads(runner.invoke(app, ["logs", "show", "2", "--json"]).stdout)
    assert as_json["cached_from"] == 1 and as_json["chains"][0]["answer"] == "408"
    exported = runner.invoke(app, ["logs", "export", "--json", "--chains"])
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert rows[0]["record"]["answer"] == "408" and rows[0]["model_sha256"] is None
    assert rows[2]["chains"][0]["thinking"] == "hmm"


def test_logs_path_and_prune(engine: ScriptedEngine, ponder_home: Path) -> None:
    assert runner.invoke(app, ["logs", "path"]).stdout.strip() == str(log_file(ponder_home))
    engine.enqueue(ANSWER, ANSWER)
    ask(QUESTION)
    ask("--no-cache", QUESTION)
    db = sqlite3.connect(log_file(ponder_home))
    with db:
        db.execute("UPDATE runs SET created = created - 40 * 86400 WHERE id = 1")
    result = runner.invoke(app, ["logs", "prune", "--older-than", "30d"])
    assert result.exit_code == 0 and "pruned 1 run(s)" in result.stderr
    assert db.execute("SELECT id FROM runs").fetchall() == [(2,)]
    assert db.execute("SELECT DISTINCT run_id FROM chains").fetchall() == [(2,)]


def test_logs_on_an_empty_log_and_bad_input(ponder_home: Path) -> None:
    listed = runner.invoke(app, ["logs", "list"])
    assert listed.exit_code == 0 and listed.stdout == ""
    assert "nothing logged yet" in listed.stderr
    assert not log_file(ponder_home).exists()
    shown = runner.invoke(app, ["logs", "show", "7"])
    assert shown.exit_code != 0 and "no run 7" in str(shown.exception)
    pruned = runner.invoke(app, ["logs", "prune", "--older-than", "soon"])
    assert pruned.exit_code != 0 and "not an age" in str(pruned.exception)
