"""Reading problems: text, JSON Lines and CSV input, broken lines, ids (ponder.problems)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ponder.errors import InputError
from ponder.problems import Problem, check_limit, load_problems
from tests.conftest import write


def test_txt_one_problem_per_line_ids_are_line_numbers(tmp_path: Path) -> None:
    f = write(tmp_path / "p.txt", "What is 2+2?\n\n  What is 3+3?  \n")
    problems = load_problems(f)
    assert [(p.id, p.question) for p in problems] == [("1", "What is 2+2?"), ("3", "What is 3+3?")]
    assert all(p.reference is None and p.error is None for p in problems)


def test_txt_blocks_separated_by_blank_lines(tmp_path: Path) -> None:
    f = write(tmp_path / "p.txt", "\nLine one\nline two\n\n\nSecond\n  problem\n")
    problems = load_problems(f, blocks=True)
    assert [(p.id, p.question) for p in problems] == [
        ("2", "Line one\nline two"), ("6", "Second\n  problem")]


def test_jsonl_fields_reference_id_and_broken_lines(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "question": "Q1", "answer": 18}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"question": "Q4", "answer": "1,260"}),
        "",
        json.dumps({"id": 7, "question": "  ", "answer": "x"}),
        json.dumps({"id": "n", "question": 12}),
        json.dumps({"id": "m", "text": "no question here"}),
        '{"id": "t", "question": "Truncat',
    ]
    problems = load_problems(write(tmp_path / "p.jsonl", "\n".join(lines)))
    by_id = {p.id: p for p in problems}
    assert by_id["a"] == Problem("a", "Q1", "18", None, 1)
    assert by_id["2"].error == "line 2: malformed JSON (Expecting property name enclosed in " \
                               "double quotes)"
    assert by_id["3"].error == "line 3: not a JSON object"
    assert by_id["4"].question == "Q4" and by_id["4"].reference == "1,260"
    assert by_id["7"].error == "line 6: empty problem" and by_id["7"].reference == "x"
    assert by_id["n"].error == "line 7: 'question' is not text"
    assert by_id["m"].error == "line 8: no 'question' field"
    assert by_id["9"].error is not None and "malformed JSON" in by_id["9"].error
    assert len(problems) == 8


def test_jsonl_field_option_and_unicode_line_separator(tmp_path: Path) -> None:
    text = json.dumps({"prompt": "a\u2028b", "answer": 2.0}, ensure_ascii=False) + "\n"
    problems = load_problems(write(tmp_path / "p.jsonl", text), field="prompt")
    assert problems == [Problem("1", "a\u2028b", "2", None, 1)]


def test_jsonl_missing_field_on_every_line_is_an_input_error(tmp_path: Path) -> None:
    f = write(tmp_path / "p.jsonl", '{"prompt": "x"}\n{"prompt": "y", "id": 3}\n')
    with pytest.raises(InputError, match="no line has a 'question' field") as exc:
        load_problems(f)
    assert "prompt" in str(exc.value) and "--field" in str(exc.value)


def test_csv_header_rows_and_broken_rows(tmp_path: Path) -> None:
    text = ('id,question,answer\n'
            'a,"What is 2+2, exactly?",4\n'
            'b,"A question\nover two lines",5\n'
            'c,too,many,fields\n'
            '\n'
            ',Only question,\n')
    problems = load_problems(write(tmp_path / "p.csv", text))
    assert problems[0] == Problem("a", "What is 2+2, exactly?", "4", None, 2)
    assert problems[1].question == "A question\nover two lines"
    assert problems[2].id == "5" and problems[2].error == "line 5: expected 3 fields, found 4"
    assert problems[3] == Problem("7", "Only question", None, None, 7)


def test_csv_without_the_question_column(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no column has a 'question' field"):
        load_problems(write(tmp_path / "p.csv", "id,prompt\n1,x\n"))
    problems = load_problems(write(tmp_path / "q.csv", "id,prompt\n1,x\n"), field="prompt")
    assert problems == [Problem("1", "x", None, None, 2)]


def test_duplicate_ids_become_errors(tmp_path: Path) -> None:
    text = '{"id": "a", "question": "x", "answer": "1"}\n{"id": "a", "question": "y"}\n'
    first, second = load_problems(write(tmp_path / "p.jsonl", text))
    assert first.error is None
    assert second.error == "line 2: duplicate id 'a' (first on line 1)"
    assert second.id == "a@2" and second.reference is None


def test_stdin_is_sniffed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('{"question": "from stdin"}\n'))
    assert load_problems(Path("-"))[0].question == "from stdin"
    monkeypatch.setattr("sys.stdin", io.StringIO("plain line\n"))
    assert load_problems(Path("-"))[0].question == "plain line"


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("p.xml", "<q/>", {}, "unknown format for p.xml"),
        ("p.txt", "q", {"fmt": "yaml"}, "unknown format 'yaml'"),
        ("p.txt", "\n\n", {}, "no problems in"),
        ("p.jsonl", "{}", {"blocks": True}, "--blocks applies to .txt input only"),
        ("p.txt", "q", {"field": "x"}, "--field applies to .jsonl and .csv"),
        ("p.txt", b"\xff\xfe\x00bad", {}, "not UTF-8 text"),
    ],
)
def test_unusable_input(tmp_path: Path, name: str, content: str | bytes,
                        kwargs: dict[str, Any], message: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=re.escape(message)):
        load_problems(path, **kwargs)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read .*No such file or directory"):
        load_problems(tmp_path / "nope.jsonl")


def test_check_limit() -> None:
    check_limit(None)
    check_limit(1)
    with pytest.raises(InputError, match="--limit must be at least 1"):
        check_limit(0)
