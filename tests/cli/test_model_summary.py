"""`--summary model`: the loaded model summarizes its own thinking after the answer
(scripted engine; the summary generation takes the next queued script)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ponder.cli import app
from ponder.engines.scripted import ScriptedEngine, split_tokens
from ponder.model_summary import (
    EMPTY_THINKING,
    OMITTED,
    SUMMARY_LINES,
    SUMMARY_TOKENS,
    clean,
    keep_end,
    skip_reason,
)
from ponder.strategies.base import Budget
from tests.conftest import FakeClock

runner = CliRunner()
ANSWER = "<think>17 times 24: 17*20=340, 17*4=68, total 408.</think>The product is \\boxed{408}."
SUMMARY = "Split 24 into 20 and 4.\nMultiplied: 340 and 68.\nAdded them: 408."
QUESTION = "What is 17 * 24?"


def ask(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["ask", "--effort", "low", *args, QUESTION])
    return result.exit_code, result.stdout, result.stderr


def test_the_model_summary_is_shown_where_the_extractive_one_is(
        scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER, SUMMARY)
    code, stdout, stderr = ask("--summary", "model")
    assert code == 0, stderr
    assert stdout == "The product is \\boxed{408}.\n"
    assert "Split 24 into 20 and 4." in stderr and "Added them: 408." in stderr
    assert f"summarized by the model in {len(split_tokens(SUMMARY))} tokens" in stderr
    prompt = scripted.prompts[-1]
    assert len(scripted.prompts) == 2
    assert "17*20=340" in prompt and QUESTION in prompt
    assert prompt.endswith(EMPTY_THINKING)
    assert prompt.startswith(scripted.prompts[0].split(QUESTION)[0] + QUESTION)


def test_usage_counts_the_summary_tokens(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER)
    plain = json.loads(ask("--json")[1])
    scripted.enqueue(ANSWER, SUMMARY)
    code, stdout, _ = ask("--json", "--summary", "model")
    record = json.loads(stdout)
    assert code == 0
    tokens = len(split_tokens(SUMMARY))
    assert record["usage"]["summary_tokens"] == tokens
    assert record["usage"]["completion_tokens"] == plain["usage"]["completion_tokens"] + tokens
    assert record["usage"]["prompt_tokens"] > plain["usage"]["prompt_tokens"]
    assert record["usage"]["thinking_tokens"] == plain["usage"]["thinking_tokens"]
    assert record["summary"] == SUMMARY and record["summary_source"] == "model"
    assert record["text"] == "The product is \\boxed{408}."  # the raw text, untouched


def test_json_carries_the_extractive_summary_by_default(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER)
    record = json.loads(ask("--json")[1])
    assert record["summary_source"] == "extractive"
    assert "408" in record["summary"]
    assert record["usage"]["summary_tokens"] == 0
    assert len(scripted.prompts) == 1


def test_a_spent_budget_skips_the_model_summary(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER, SUMMARY)
    code, stdout, stderr = ask("--json", "--summary", "model", "--budget", "40")
    record = json.loads(stdout)
    assert code == 0
    assert len(scripted.prompts) == 1
    assert record["summary_source"] == "extractive"
    assert record["usage"]["summary_tokens"] == 0
    assert record["usage"]["completion_tokens"] == scripted.tokens_generated
    assert stderr.count("no model summary (the token budget is spent)") == 1


def test_no_thinking_no_summary_call(scripted: ScriptedEngine) -> None:
    scripted.enqueue("The product is \\boxed{408}.", SUMMARY)
    code, stdout, stderr = ask("--json", "--summary", "model")
    record = json.loads(stdout)
    assert code == 0
    assert len(scripted.prompts) == 1
    assert record["summary"] is None and record["summary_source"] is None
    assert record["usage"]["summary_tokens"] == 0
    assert "no model summary" not in stderr


def test_quiet_spends_no_tokens_on_a_summary(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER, SUMMARY)
    code, stdout, _ = ask("-q", "--summary", "model")
    assert (code, stdout) == (0, "408\n")
    assert len(scripted.prompts) == 1


def test_an_empty_model_summary_falls_back_to_the_extractive_one(
        scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER, "<think>\n</think>\n")
    code, _, stderr = ask("--summary", "model")
    assert code == 0
    assert "no model summary (the model wrote none)" in stderr
    assert "17*20=340" in stderr or "408" in stderr


def test_a_logged_answer_shows_its_model_summary(scripted: ScriptedEngine) -> None:
    scripted.fingerprint = "model-file"
    scripted.enqueue(ANSWER, SUMMARY)
    assert ask("--summary", "model")[0] == 0
    code, _, stderr = ask("--summary", "model")
    assert code == 0 and "answered from the log" in stderr
    assert "Added them: 408." in stderr
    record = json.loads(ask("--json", "--summary", "model")[1])
    assert record["summary_source"] == "model" and record["cached"]


def test_chat_turns_get_a_model_summary(scripted: ScriptedEngine) -> None:
    scripted.enqueue(ANSWER, SUMMARY)
    result = runner.invoke(app, ["chat", "-e", "low", "--summary", "model"],
                           input=QUESTION + "\n")
    assert result.exit_code == 0, result.output
    assert "Added them: 408." in result.stderr
    assert result.stdout == "The product is \\boxed{408}.\n"


def test_skip_reason_reads_the_budget_and_the_clock(clock: FakeClock) -> None:
    assert skip_reason(Budget(None, None, clock)) is None
    assert skip_reason(Budget(100, None, clock, used=40)) is None
    assert skip_reason(Budget(100, None, clock, used=41)) == "the token budget is spent"
    timed = Budget(None, 5.0, clock)
    assert skip_reason(timed) is None
    clock.advance(5.0)
    assert skip_reason(timed) == "the time limit is spent"
    assert SUMMARY_TOKENS == 60


def test_keep_end_keeps_the_conclusion() -> None:
    text = " ".join(f"step{i}" for i in range(200)) + " so the answer is 408."

    def count(t: str) -> int:
        return len(split_tokens(t))

    kept = keep_end(text, 50, count)
    assert kept.startswith(OMITTED) and kept.endswith("the answer is 408.")
    assert count(kept) <= 50
    assert keep_end("short thinking", 50, count) == "short thinking"


def test_clean_drops_tags_bullets_and_extra_lines() -> None:
    extra = "\n".join(f"* l{i}" for i in range(9))
    raw = "<think>hm</think>\nSummary:\n- First.\n\n2. Second.\n" + extra
    lines = clean(raw).splitlines()
    assert lines[:2] == ["First.", "Second."]
    assert len(lines) == SUMMARY_LINES
