"""The streaming matcher shared by the engines' stop strings and the thinking splitter."""

from __future__ import annotations

import pytest

from ponder.textmatch import Found, HoldBack, find_first, partial_suffix


def feed_all(matcher: HoldBack, pieces: list[str]) -> tuple[str, Found | None, str]:
    """Everything released piece by piece up to the first match, that match, and the
    pieces not fed after it."""
    out = ""
    for i, piece in enumerate(pieces):
        found = matcher.feed(piece)
        out += found.text
        if found.pattern is not None:
            return out, found, "".join(pieces[i + 1 :])
    return out, None, ""


def test_find_first_takes_the_earliest_pattern() -> None:
    assert find_first("a stop and an end", ["end", "stop"]) == (2, "stop")
    assert find_first("nothing here", ["end"]) is None
    assert find_first("end end", ["end"], start=1) == (4, "end")


def test_partial_suffix_is_the_longest_proper_prefix_at_the_end() -> None:
    assert partial_suffix("think </th", ["</think>"]) == 4
    assert partial_suffix("a\n", ["\n\n", "xyz"]) == 1
    assert partial_suffix("</think>", ["</think>"]) == 0  # whole patterns are matches
    assert partial_suffix("abc", []) == 0


def test_a_pattern_split_across_pieces_is_found_and_never_released() -> None:
    out, found, _ = feed_all(HoldBack(["STOP"]), ["one two S", "T", "OP three"])
    assert out == "one two "
    assert found == Found("", "STOP", " three")


def test_a_prefix_that_does_not_complete_is_released_once_decided() -> None:
    matcher = HoldBack(["\n\n"])
    assert matcher.feed("line\n").text == "line"
    assert matcher.held == "\n"
    assert matcher.feed("more").text == "\nmore"
    assert matcher.held == ""


@pytest.mark.parametrize("cut", range(1, 12))
def test_released_and_held_text_is_all_the_text_until_a_match(cut: int) -> None:
    text = "alpha <tag> omega"
    matcher = HoldBack(["<tag>", "<other>"])
    out, found, unfed = feed_all(matcher, [text[:cut], text[cut:]])
    assert found is not None and found.pattern == "<tag>"
    assert out + found.pattern + found.rest + unfed == text


def test_flush_releases_and_drop_forgets_the_held_text() -> None:
    matcher = HoldBack(["END"])
    assert matcher.feed("the E").text == "the "
    twin = matcher.copy()
    assert matcher.flush() == "E" and matcher.held == ""
    twin.drop()
    assert twin.held == "" and twin.feed("ND").text == "ND"


def test_no_patterns_release_everything_at_once() -> None:
    matcher = HoldBack(["", ""])
    assert matcher.feed("<").text == "<" and matcher.held == ""
