"""The test-time-scaling plot: PNG and terminal chart (ponder.plot)."""

from __future__ import annotations

import math

from ponder.evaluation import summarize
from ponder.plot import LogScale, Point, points_from, render_png, terminal_chart
from tests.conftest import check_plot, decode_png, rec


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
    assert all(scale.lo <= math.log10(t) <= scale.hi for t in ticks)
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
