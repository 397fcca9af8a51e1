"""Reading and writing the log: runs, their chains, and model file hashes.

One Store wraps one connection that the threads of a process share (`solve` runs problems
side by side); a lock serializes its use. Each write is one short transaction.

A run's status is `running` while its process works on it, then `done` or `interrupted`
(Ctrl-C, a time limit). A process killed outright (SIGKILL, a crash, a power cut) cannot
say so: its run keeps `running`, with the process id and host that wrote it, and a reader on
that host that finds the process gone shows it, and marks it, as `died`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ponder.log import codec
from ponder.log.db import LogError, connect, transaction
from ponder.strategies.memory import NATURAL_ENDS, ChainRecord, PriorChain

RUN_COLUMNS = (
    "created", "finished", "status", "command", "question", "model", "model_sha256",
    "effort", "strategy", "settings", "sampling", "seed", "cache_key", "cached_from",
    "conversation", "turn", "answer", "finish_reason", "prompt_tokens", "completion_tokens",
    "thinking_tokens", "seconds", "chains_reused", "tokens_saved", "record", "pid", "host",
)
RUNNING, DIED = "running", "died"
_NATURAL = ", ".join(f"'{r}'" for r in sorted(NATURAL_ENDS))


class Store:
    """The log database of one process."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self._conn = connect(path, create=create)
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def _write(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
               ) -> sqlite3.Cursor:
        with self._lock:
            try:
                with transaction(self._conn) as conn:
                    return conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise LogError(f"cannot write the log {self.path}: {exc}") from None

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return list(self._conn.execute(sql, params).fetchall())
            except sqlite3.Error as exc:
                raise LogError(f"cannot read the log {self.path}: {exc}") from None

    # --- runs -----------------------------------------------------------------------

    def add_run(self, fields: Mapping[str, Any]) -> int:
        """A new run row (a running run, or a finished one such as a cache hit)."""
        row = {name: _column(value) for name, value in fields.items()
               if name in RUN_COLUMNS and value is not None}
        row.setdefault("created", time.time())
        names = ", ".join(row)
        marks = ", ".join(f":{name}" for name in row)
        return int(self._write(f"INSERT INTO runs ({names}) VALUES ({marks})", row).lastrowid
                   or 0)

    def update_run(self, run_id: int, fields: Mapping[str, Any]) -> None:
        names = [name for name in fields if name in RUN_COLUMNS]
        sets = ", ".join(f"{name} = ?" for name in names)
        self._write(f"UPDATE runs SET {sets} WHERE id = ?",
                    [*(_column(fields[n]) for n in names), run_id])

    def run(self, run_id: int) -> sqlite3.Row | None:
        rows = self._read("SELECT * FROM runs WHERE id = ?", [run_id])
        return rows[0] if rows else None

    def cached(self, key: str) -> sqlite3.Row | None:
        """The latest finished, uninterrupted run with this cache key (not itself a hit)."""
        rows = self._read(
            "SELECT * FROM runs WHERE cache_key = ? AND status = 'done' "
            "AND cached_from IS NULL AND record IS NOT NULL ORDER BY id DESC LIMIT 1", [key])
        return rows[0] if rows else None

    def runs(self, *, limit: int | None = None, search: str | None = None,
             since: float | None = None) -> list[sqlite3.Row]:
        """Runs, newest first; `search` matches the question or the answer."""
        where: list[str] = ["1"]
        params: list[Any] = []
        if search:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace(
                "_", "\\_") + "%"
            where.append("(question LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\')")
            params += [pattern, pattern]
        if since is not None:
            where.append("created >= ?")
            params.append(since)
        sql = f"SELECT * FROM runs WHERE {' AND '.join(where)} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._read(sql, params)

    def mark_died(self, alive: Callable[[int], bool] | None = None) -> int:
        """Mark `died` the running runs whose process, on this host, is gone; the count."""
        rows = self._read("SELECT * FROM runs WHERE status = ? AND host = ? AND pid IS NOT NULL",
                          [RUNNING, socket.gethostname()])
        dead = [int(row["id"]) for row in rows if status_of(row, alive) == DIED]
        if dead:
            marks = ", ".join("?" * len(dead))
            self._write(f"UPDATE runs SET status = ? WHERE status = ? AND id IN ({marks})",
                        [DIED, RUNNING, *dead])
        return len(dead)

    def prune(self, before: float) -> int:
        """Delete runs created before `before` (their chains go with them); the count."""
        return self._write("DELETE FROM runs WHERE created < ?", [before]).rowcount

    # --- chains ---------------------------------------------------------------------

    def add_chains(self, run_id: int, records: Sequence[ChainRecord]) -> None:
        rows = [_chain_row(run_id, r) for r in records]
        if not rows:
            return
        names = ", ".join(rows[0])
        marks = ", ".join(f":{name}" for name in rows[0])
        with self._lock:
            try:
                with transaction(self._conn) as conn:
                    conn.executemany(f"INSERT INTO chains ({names}) VALUES ({marks})", rows)
            except sqlite3.Error as exc:
                raise LogError(f"cannot write the log {self.path}: {exc}") from None

    def chains(self, run_id: int) -> list[sqlite3.Row]:
        """A run's chains in the order they were logged (replays show their source's text)."""
        return self._read("SELECT * FROM chains WHERE run_id = ? ORDER BY id", [run_id])

    def prior(self, key: str, top_logprobs: int) -> PriorChain | None:
        """The logged chain to replay for `key`: one the model finished, else the longest."""
        rows = self._read(
            "SELECT id, stream, stream_reason, top_logprobs FROM chains WHERE key = ? "
            "AND stream IS NOT NULL AND sampled > 0 AND top_logprobs >= ? "
            f"ORDER BY stream_reason IN ({_NATURAL}) DESC, sampled DESC, id DESC LIMIT 1",
            [key, top_logprobs])
        if not rows:
            return None
        row = rows[0]
        try:
            events = codec.decode(row["stream"])
        except ValueError:
            return None  # a damaged stream: sample the chain afresh
        return PriorChain(int(row["id"]), events, row["stream_reason"],
                          int(row["top_logprobs"]))

    # --- model files ----------------------------------------------------------------

    def file_sha256(self, path: Path) -> str:
        """The sha256 of a file, hashed once per path, size and modification time."""
        resolved = path.resolve()
        stat = resolved.stat()
        rows = self._read("SELECT sha256 FROM files WHERE path = ? AND size = ? AND "
                          "mtime_ns = ?", [str(resolved), stat.st_size, stat.st_mtime_ns])
        if rows:
            return str(rows[0]["sha256"])
        digest = hashlib.sha256()
        with resolved.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        sha = digest.hexdigest()
        self._write("INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256) "
                    "VALUES (?, ?, ?, ?)", [str(resolved), stat.st_size, stat.st_mtime_ns, sha])
        return sha


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this host (a zombie, killed but not yet reaped, does not);
    True when that cannot be told."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # not ours to signal: it exists
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def status_of(row: sqlite3.Row | Mapping[str, Any], alive: Callable[[int], bool] | None = None
              ) -> str:
    """A run's status, `died` for a running one whose process on this host is gone."""
    status = str(row["status"])
    if status != RUNNING or row["pid"] is None or row["host"] != socket.gethostname():
        return status
    return status if (alive or pid_alive)(int(row["pid"])) else DIED


def writer() -> dict[str, Any]:
    """The fields naming the process that writes a run."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _column(value: Any) -> Any:
    """Dicts and lists are stored as JSON text."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return int(value)
    return value


def _chain_row(run_id: int, r: ChainRecord) -> dict[str, Any]:
    s = r.sample
    events = r.events
    return {
        "run_id": run_id, "chain": s.chain, "key": r.key, "seed": r.seed,
        "answer": s.answer, "text": s.text, "thinking": s.thinking, "tokens": s.tokens,
        "confidence": s.confidence, "score": s.score, "finish_reason": s.finish_reason,
        "stream_reason": r.stream_reason,
        "sampled": sum(not e.injected for e in events) if events is not None else 0,
        "top_logprobs": r.top_logprobs,
        "stream": codec.encode(events) if events is not None else None,
        "reused_from": r.reused_from, "reused_tokens": r.reused_tokens,
    }


def iter_json(rows: Sequence[sqlite3.Row]) -> Iterator[dict[str, Any]]:
    """Rows as plain dicts, JSON columns decoded (for export and --json)."""
    for row in rows:
        out = dict(row)
        out["status"] = status_of(row)
        for name in ("settings", "sampling", "record"):
            if isinstance(out.get(name), str):
                with contextlib.suppress(ValueError):
                    out[name] = json.loads(out[name])
        out.pop("stream", None)
        yield out
