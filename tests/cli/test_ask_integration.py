"""`ponder ask` end to end on the real SmolLM2-135M GGUF (integration)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from tests.models import smollm2_path

pytestmark = pytest.mark.integration
runner = CliRunner()


@pytest.fixture(scope="session")
def smollm2() -> Path:
    return smollm2_path()


def test_ask_json_on_real_model(smollm2: Path) -> None:
    result = runner.invoke(
        app, ["ask", "--json", "--model", str(smollm2), "--effort", "low", "--seed", "1",
              "What is 2 + 3?"],
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["model"] in ("smollm2-135m", smollm2.name)
    assert record["strategy"] == "cot" and record["effort"] == "low"
    usage = record["usage"]
    assert usage["prompt_tokens"] > 10
    assert usage["completion_tokens"] > 0
    assert usage["thinking_tokens"] <= 256
    assert record["finish_reason"] in {"eos", "stop", "length", "budget"}
    assert record["text"] or record["thinking"]


def test_same_seed_same_answer(smollm2: Path) -> None:
    args = ["ask", "--json", "--model", str(smollm2), "--budget", "40", "--seed", "7",
            "Name a color."]
    first = json.loads(runner.invoke(app, args).stdout)
    second = json.loads(runner.invoke(app, args).stdout)
    assert first["text"] == second["text"] and first["thinking"] == second["thinking"]
    assert first["usage"]["completion_tokens"] <= 40


def test_piped_output_is_plain_text(smollm2: Path, tmp_path: Path) -> None:
    env = dict(os.environ, TERM="xterm-256color", FORCE_COLOR="")
    env.pop("FORCE_COLOR")
    proc = subprocess.run(
        [sys.executable, "-m", "ponder", "ask", "--model", str(smollm2), "--budget", "48",
         "What is 1 + 1?"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
    assert "\x1b" not in proc.stdout
    assert "Thought for" in proc.stderr


def test_model_summary_on_real_model(smollm2: Path) -> None:
    result = runner.invoke(
        app, ["ask", "--json", "--no-log", "--model", str(smollm2), "--effort", "low",
              "-o", "think_cap=64", "--seed", "1", "--summary", "model",
              "Tom buys 4 pens at 3 dollars each and pays with 20 dollars. What is his change?"],
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["thinking"], "the prefilled <think> gives SmolLM2 thinking to summarize"
    assert record["summary_source"] == "model"
    assert record["summary"].strip()
    tokens = record["usage"]["summary_tokens"]
    assert 0 < tokens <= 60
    chains = sum(s["tokens"] for s in record["samples"])
    assert record["usage"]["completion_tokens"] >= chains + tokens
