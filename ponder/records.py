"""The records of a run: one JSON object per problem, written and flushed at once.

``--resume`` reads the output back: complete records are kept, a truncated last line (from
a crash) and records of problems that were interrupted are dropped (the file is rewritten
atomically), and the kept ids are skipped.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, TypedDict, cast

from ponder.errors import InputError, PonderError


class Record(TypedDict, total=False):
    """One problem's line in a run's JSON Lines output.

    Every record has `id`, `status` ("ok", "interrupted" or "error"), `question`, `answer`,
    `reference`, `correct`, `tokens` and `seconds` (and `config` in `ponder eval`). Records
    of problems that ran carry the rest of `ponder ask --json`'s object (and, when the run
    log is on, `cached`, `reuse` and `log_id`); error records carry the `error` and the
    model, effort and strategy. Records read back from a file are only checked for a text
    `id`.
    """

    id: str
    config: str
    status: str
    error: str
    question: str
    answer: str | None
    reference: str | None
    correct: bool | None
    tokens: int
    seconds: float
    text: str
    thinking: str
    model: str
    effort: str | None
    strategy: str
    settings: dict[str, Any]
    run: dict[str, Any]
    usage: dict[str, int]
    finish_reason: str
    interrupted: bool
    samples: list[dict[str, Any]]
    votes: dict[str, float]
    summary: str | None
    summary_source: str | None
    cached: bool
    reuse: dict[str, int]
    log_id: int | None


class RecordWriter:
    """Writes one JSON object per line and flushes it at once; safe to share across threads."""

    def __init__(self, stream: TextIO | None, name: str, *, sync: bool = False) -> None:
        self.stream = stream
        self.name = name
        self._sync = sync
        self._lock = threading.Lock()

    def write(self, record: Mapping[str, Any]) -> None:
        if self.stream is None:
            return
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            try:
                self.stream.write(line)
                self.stream.flush()
                if self._sync:
                    os.fsync(self.stream.fileno())
            except BrokenPipeError:
                raise  # the reader went away (`| head`): the CLI ends quietly
            except OSError as exc:
                hint = f"what was written is kept: continue with --resume --out {self.name}"
                raise PonderError(f"cannot write {self.name}: {exc.strerror or exc}",
                                  hint if self._sync else None) from None

    def close(self) -> None:
        if self.stream is not None and self.stream not in (sys.stdout, sys.__stdout__):
            self.stream.close()


def check_output(
    out: Path | None, *, resume: bool = False, overwrite: bool = False,
    source: Path | None = None,
) -> None:
    """Refuse output settings that could lose finished work, before any work is done."""
    if out is None:
        if resume:
            raise InputError("--resume needs --out FILE")
        return
    if resume and overwrite:
        raise InputError("give --resume or --overwrite, not both")
    if out.is_dir() or not out.parent.is_dir():
        what = "it is a directory" if out.is_dir() else f"no directory {out.parent}"
        raise InputError(f"cannot write {out}: {what}")
    if source is not None and str(source) != "-" and _same_file(out, source):
        raise InputError(f"--out {out} is the input file")
    if not resume and not overwrite and _has_content(out):
        raise InputError(f"{out} already holds results",
                         "add --resume to continue it or --overwrite to start over")


def open_writer(
    out: Path | None, *, resume: bool = False, overwrite: bool = False, stdout: bool = True,
) -> RecordWriter:
    """The output: `out` appended to (resume) or created, else stdout (or nowhere)."""
    check_output(out, resume=resume, overwrite=overwrite)
    if out is None:
        return RecordWriter(sys.stdout if stdout else None, "stdout")
    try:
        stream = out.open("a" if resume else "w", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    return RecordWriter(stream, str(out), sync=True)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and a.samefile(b)
    except OSError:
        return False


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


@dataclass
class Existing:
    """Records read back from an output file: the kept ones and what was dropped."""

    records: list[Record]
    unreadable: int = 0
    redo: int = 0


def read_records(path: Path) -> Existing:
    """Every complete record in `path`; unreadable lines are counted, not fatal."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Existing([])
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8 text"
        raise InputError(f"cannot read {path}: {reason}") from None
    existing = Existing([])
    for line in text.split("\n"):
        if not line.strip():
            continue
        record = _parse_record(line)
        if record is None:
            existing.unreadable += 1
        else:
            existing.records.append(record)
    return existing


def _parse_record(line: str) -> Record | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("id"), str):
        return None
    return cast(Record, record)


def prepare_resume(path: Path) -> Existing:
    """Read `path` for --resume and repair it: drop broken lines and interrupted records.

    The file is rewritten (atomically) only when something has to go or its last line
    lacks a newline, so that new records start on a line of their own.
    """
    existing = read_records(path)
    kept = [r for r in existing.records if r.get("status") != "interrupted"]
    existing.redo = len(existing.records) - len(kept)
    existing.records = kept
    if existing.unreadable or existing.redo or _lacks_final_newline(path):
        _rewrite(path, kept)
    return existing


def _lacks_final_newline(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            if f.seek(0, os.SEEK_END) == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except OSError:
        return False


def _rewrite(path: Path, records: Iterable[Record]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise PonderError(f"cannot repair {path}: {exc.strerror or exc}") from None
