"""The tables `ponder eval` and `ponder solve` print (ponder.cli.tables)."""

from __future__ import annotations

from rich.console import Console

from ponder.cli.tables import eval_table, run_table
from ponder.evaluation import summarize
from tests.conftest import rec


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
