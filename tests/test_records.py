"""Writing records and resuming a run from its output file (ponder.records)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ponder.errors import InputError
from ponder.records import RecordWriter, check_output, prepare_resume
from tests.conftest import write


def test_writer_writes_whole_lines_and_flushes() -> None:
    stream = io.StringIO()
    writer = RecordWriter(stream, "buffer")
    writer.write({"id": "a", "answer": "4"})
    writer.write({"id": "b", "answer": "ü"})
    assert stream.getvalue() == '{"id": "a", "answer": "4"}\n{"id": "b", "answer": "ü"}\n'


def test_existing_results_are_not_overwritten_by_accident(tmp_path: Path) -> None:
    out = write(tmp_path / "out.jsonl", '{"id": "a"}\n')
    with pytest.raises(InputError, match="already holds results"):
        check_output(out)
    with pytest.raises(InputError, match="--resume needs --out"):
        check_output(None, resume=True)
    with pytest.raises(InputError, match="is the input file"):
        check_output(out, overwrite=True, source=out)
    check_output(out, resume=True)
    check_output(out, overwrite=True)
    check_output(tmp_path / "new.jsonl")
    with pytest.raises(InputError, match="no directory"):
        check_output(tmp_path / "missing" / "out.jsonl")
    with pytest.raises(InputError, match="it is a directory"):
        check_output(tmp_path)


def test_resume_repairs_a_truncated_last_line(tmp_path: Path) -> None:
    good = json.dumps({"id": "a", "status": "ok", "answer": "4"})
    out = write(tmp_path / "out.jsonl", good + '\n{"id": "b", "status": "o')
    existing = prepare_resume(out)
    assert [r["id"] for r in existing.records] == ["a"]
    assert existing.unreadable == 1
    assert out.read_text(encoding="utf-8") == good + "\n"


def test_resume_drops_interrupted_records_and_adds_a_missing_newline(tmp_path: Path) -> None:
    a = json.dumps({"id": "a", "status": "ok"})
    b = json.dumps({"id": "b", "status": "interrupted"})
    c = json.dumps({"id": "c", "status": "error", "error": "empty problem"})
    out = write(tmp_path / "out.jsonl", f"{a}\n{b}\n{c}")
    existing = prepare_resume(out)
    assert [r["id"] for r in existing.records] == ["a", "c"]
    assert existing.redo == 1
    assert out.read_text(encoding="utf-8") == f"{a}\n{c}\n"


def test_resume_leaves_a_clean_file_untouched(tmp_path: Path) -> None:
    out = write(tmp_path / "out.jsonl", '{"id": "a", "status": "ok"}\n')
    before = out.stat().st_mtime_ns
    assert len(prepare_resume(out).records) == 1
    assert out.stat().st_mtime_ns == before
    assert prepare_resume(tmp_path / "missing.jsonl").records == []
