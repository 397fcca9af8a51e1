"""Evaluation statistics: the Wilson interval, summaries of records (ponder.evaluation)."""

from __future__ import annotations

import pytest

from ponder.evaluation import Summary, latest, sign_test, summarize, summarize_all, wilson
from tests.conftest import rec


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [(5, 10, 0.2366, 0.7634), (0, 10, 0.0, 0.2775), (10, 10, 0.7225, 1.0),
     (1, 1, 0.2065, 1.0), (81, 100, 0.7222, 0.8749)],
)
def test_wilson_interval_known_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-4)
    assert hi == pytest.approx(high, abs=1e-4)


@pytest.mark.parametrize(("a", "b", "p"), [
    (6, 3, 0.5078125),     # 2 * (1 + 9 + 36 + 84) / 512
    (3, 6, 0.5078125),     # symmetric
    (14, 7, 0.18924713),   # 2 * P(X <= 7), X ~ Bin(21, 1/2)
    (10, 0, 0.001953125),  # 2 / 1024
    (4, 4, 1.0),           # an even split is capped at 1
    (0, 0, 1.0),           # no discordant pairs: no evidence
])
def test_sign_test_known_values(a: int, b: int, p: float) -> None:
    assert sign_test(a, b) == pytest.approx(p, rel=1e-6)


def test_sign_test_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        sign_test(-1, 2)


def test_wilson_rejects_empty_samples() -> None:
    with pytest.raises(ValueError):
        wilson(0, 0)
    with pytest.raises(ValueError):
        wilson(3, 2)


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


def test_summary_type_is_frozen() -> None:
    s = Summary("x")
    with pytest.raises(AttributeError):
        s.correct = 3  # type: ignore[misc]
