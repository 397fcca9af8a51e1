"""Offline replay of strategies on recorded chains, and `ponder eval --samples/--report`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ponder.cli import app
from ponder.engines.scripted import ScriptedEngine
from ponder.errors import InputError
from ponder.events import Sample
from ponder.replay import (
    Chains,
    Replay,
    chains_from_records,
    first,
    most_confident,
    pooled_samples,
    standard_points,
    stopping,
    vote,
    weighted,
)
from ponder.strategies.stopping import StopRule

runner = CliRunner()


def chain(i: int, answer: str | None, tokens: int = 10, lowest: float = 1.0) -> Sample:
    return Sample(i, answer, "", "", tokens, "eos", 0.5, stats={"lowest": lowest})


def problem(pid: str, reference: str, greedy: str, *sampled: str) -> Chains:
    chains = [chain(0, greedy)] + [chain(i + 1, a) for i, a in enumerate(sampled)]
    return Chains(pid, reference, tuple(chains), greedy=True)


def test_policies_pick_and_count_tokens() -> None:
    chains = [chain(0, "1", 10, 0.2), chain(1, "2", 20, 0.9), chain(2, "2", 30, 0.8)]
    assert vote(chains) == ("2", 60)
    assert first(chains) == ("1", 10)
    assert most_confident()(chains) == ("2", 60)
    assert weighted(0.34)(chains) == ("2", 60)          # keeps the most confident chain only
    low_first = [chain(0, "1", 10, 5.0), chain(1, "2", 20, 0.1), chain(2, "2", 30, 0.1)]
    assert weighted(0.34)(low_first)[0] == "1"
    assert weighted(1.0)(low_first)[0] == "1"           # 5.0 outweighs 0.2


def test_stopping_policy_spends_only_the_rounds_it_needs() -> None:
    policy = stopping(StopRule(start=2, step=2, max_n=6, window=2))
    agree = [chain(i, "7", 10) for i in range(6)]
    assert policy(agree) == ("7", 20)
    split = [chain(0, "1"), chain(1, "2"), chain(2, "3"), chain(3, "3"), chain(4, "9"),
             chain(5, "9")]
    assert policy(split) == ("3", 40)


def test_replay_exact_where_no_draw_is_random() -> None:
    problems = [problem("a", "0", "0", "0", "5", "0"), problem("b", "1", "2", "1", "1", "3")]
    replay = Replay(problems, draws=50)
    assert replay.curve("greedy", first, 1, with_greedy=True).accuracy == 0.5
    full = replay.curve("vote+greedy", vote, 4, with_greedy=True)
    assert (full.accuracy, full.tokens, full.problems) == (1.0, 40.0, 2)
    one = replay.curve("first", first, 1)
    assert one.accuracy == pytest.approx((2 / 3 + 2 / 3) / 2, abs=0.15)


def test_standard_points_cover_every_curve_the_chains_allow() -> None:
    problems = [problem("a", "0", "0", "0", "5", "0"), problem("b", "1", "2", "1", "1", "3")]
    names = {(p.strategy, p.k) for p in standard_points(problems, draws=5)}
    assert ("greedy", 1) in names and ("first", 1) in names
    assert ("vote", 2) in names and ("vote+greedy", 4) in names
    assert ("vote", 3) in names and ("vote", 4) not in names   # all 3 sampled chains
    assert ("first", 2) not in names
    assert ("esc+greedy", 4) in names and ("deepconf-10", 2) in names


def test_records_round_trip(tmp_path: Path) -> None:
    record = {"id": "p", "status": "ok", "reference": "3", "settings": {"greedy_first": True},
              "samples": [{"chain": 0, "answer": "3", "tokens": 12, "finish_reason": "eos",
                           "stats": {"mean_prob": 0.9, "lowest": 2.0}}]}
    (loaded,) = chains_from_records([record, {**record, "id": "q", "status": "error"}])
    assert loaded.greedy and loaded.samples[0].stats["lowest"] == 2.0
    assert loaded.samples[0].confidence == 0.9


def vote_record(pid: str, answers: list[str], strategy: str = "vote") -> dict[str, object]:
    return {"id": pid, "status": "ok", "reference": "3", "strategy": strategy,
            "settings": {"greedy_first": True},
            "samples": [{"chain": i, "answer": a, "tokens": 5} for i, a in enumerate(answers)]}


def test_pool_skips_the_greedy_chain_and_chains_an_earlier_run_already_gave() -> None:
    six = [vote_record("p", ["g", "1", "2", "3", "4", "5"])]
    ten = [vote_record("p", ["g", "1x", "2x", "3x", "4x", "5x", "6", "7", "8", "9"]),
           vote_record("q", ["g", "a"]), vote_record("r", ["g", "b"], strategy="adaptive")]
    pool = pooled_samples([six, ten])
    assert [s.answer for s in pool["p"]] == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
    assert [s.answer for s in pool["q"]] == ["a"]
    assert "r" not in pool


def right(n: int) -> str:
    return f"<think> hmm</think>\\boxed{{{n}}}"


def test_eval_samples_then_report(scripted: ScriptedEngine, tmp_path: Path) -> None:
    data = tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps({"id": f"p{i}", "question": f"What is {i}?",
                                           "answer": str(i)}) for i in range(2)) + "\n")
    scripted.enqueue(right(0), right(0), right(5), right(0),
                     right(2), right(1), right(1), right(3))
    out = tmp_path / "samples.jsonl"
    result = runner.invoke(app, ["eval", str(data), "--samples", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["config"] for r in records] == ["samples@4"] * 2
    assert records[0]["settings"]["greedy_first"] is True
    assert len(records[0]["samples"]) == 4 and "stats" in records[0]["samples"][0]
    report = runner.invoke(app, ["eval", "--report", str(out)])
    assert report.exit_code == 0, report.output
    lines = [" ".join(line.replace("|", " ").split()) for line in report.stdout.splitlines()]
    assert "greedy 1 50.0% 9.5–90.5% 2" in lines
    assert "vote+greedy 4 100.0% 34.2–100.0% 8" in lines


def test_eval_samples_refuses_efforts(scripted: ScriptedEngine, tmp_path: Path) -> None:
    data = tmp_path / "dev.jsonl"
    data.write_text(json.dumps({"question": "q", "answer": "1"}) + "\n")
    result = runner.invoke(app, ["eval", str(data), "--samples", "4", "-e", "low"])
    assert isinstance(result.exception, InputError)
    assert "--samples" in str(result.exception)

