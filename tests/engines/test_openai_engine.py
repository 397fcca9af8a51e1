"""Fast tests of the OpenAI engine against a fake SSE server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ponder.engines import EngineOptions, load_engine
from ponder.engines._http import RetryPolicy, Timeouts, normalize_base_url
from ponder.engines._sse import MalformedEventError, SSEStream, StreamError
from ponder.engines.base import Sampling, fold, generate
from ponder.engines.openai import (
    OpenAIEngine,
    OpenAISettings,
    decode_chat,
    list_remote_models,
    settings_from,
)
from ponder.errors import ContextOverflowError, InputError, ModelNotFoundError, RemoteError
from ponder.events import SequenceDone, TokenEvent
from tests.fake_openai_server import FakeConfig, FakeOpenAIServer, words

TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}<|assistant|>"
TEXT = "one two three four five six seven eight nine ten"
FAST = RetryPolicy(attempts=3, base=0.02, cap=0.1)
SECRET = "sk-test-5ecret-do-not-print"


def make(srv: FakeOpenAIServer, **kw: object) -> OpenAIEngine:
    settings = OpenAISettings(srv.url, retry=FAST, timeouts=Timeouts(2.0, 10.0), **kw)  # type: ignore[arg-type]
    return OpenAIEngine(settings)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    """A completions-capable fake that serves a chat template through /props."""
    cfg = FakeConfig(props={"chat_template": TEMPLATE, "default_generation_settings":
                            {"n_ctx": 512}})
    with FakeOpenAIServer(cfg) as srv:
        yield srv


@pytest.fixture
def engine(server: FakeOpenAIServer) -> Iterator[OpenAIEngine]:
    eng = make(server)
    yield eng
    eng.close()


def prompt_of(engine: OpenAIEngine, question: str = "Count") -> str:
    return engine.chat_prompt([{"role": "user", "content": question}])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- server-sent events ---------------------------------------------------------------------


def sse(lines: list[str], content_type: str = "text/event-stream") -> SSEStream:
    """The stream of a response whose body is `lines`."""
    body = "".join(line + "\n" for line in lines).encode()
    return SSEStream.of(httpx.Response(200, headers={"content-type": content_type},
                                       content=body))


def test_sse_parses_data_comments_and_done() -> None:
    lines = [": ping", "", 'data: {"a": 1}', "", "event: x", 'data: {"b":', "data: 2}", "",
             "event: empty", "", "data: [DONE]", "", 'data: {"late": 1}', ""]
    stream = sse(lines)
    assert list(stream) == [{"a": 1}, {"b": 2}]
    assert stream.done


def test_sse_without_done_is_not_done() -> None:
    stream = sse(['data: {"a": 1}', "", "data:{\"b\":2}", ""])
    assert list(stream) == [{"a": 1}, {"b": 2}] and not stream.done


def test_sse_malformed_and_error_payloads_raise() -> None:
    with pytest.raises(MalformedEventError):
        list(sse(["data: {oops", ""]))
    with pytest.raises(MalformedEventError):
        list(sse(["data: [1, 2]", ""]))
    with pytest.raises(StreamError, match="boom"):
        list(sse(['data: {"error": {"message": "boom"}}', ""]))


def test_sse_refuses_a_response_that_is_not_an_event_stream() -> None:
    with pytest.raises(MalformedEventError, match=r"not an event stream.*application/json"):
        list(sse(['{"choices": []}'], "application/json"))


def test_base_url_normalization() -> None:
    assert normalize_base_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1"
    with pytest.raises(InputError):
        normalize_base_url("127.0.0.1:8000")


# -- connecting -----------------------------------------------------------------------------


def test_connect_uses_served_template_and_context(engine: OpenAIEngine) -> None:
    assert engine.mode == "completions" and engine.supports_continuation
    assert engine.model_name == "fake-model"
    assert engine.context_length == 512
    assert prompt_of(engine, "hi") == "<|user|>hi\n<|assistant|>"
    assert engine.count_tokens("a b c") == 3


def test_chat_mode_without_template() -> None:
    with FakeOpenAIServer(FakeConfig(tokenize=False)) as srv:
        eng = make(srv, context_length=1000)
        try:
            assert eng.mode == "chat" and not eng.supports_continuation
            assert eng.context_length == 1000
            prompt = prompt_of(eng, "hello there")
            assert decode_chat(prompt + "so far") == (
                [{"role": "user", "content": "hello there"}], "so far")
            assert eng.count_tokens("abcdef") == 2  # the estimate: 3 bytes a token
            [done] = generate(eng, prompt, Sampling(max_tokens=20))
            assert done.text == TEXT and done.finish_reason == "eos"
            assert srv.streams()[0].path == "/v1/chat/completions"
        finally:
            eng.close()


def test_default_context_when_nobody_says() -> None:
    with FakeOpenAIServer() as srv:
        eng = make(srv)
        assert eng.context_length == 2048
        eng.close()


def test_unknown_model_is_one_clear_line() -> None:
    with FakeOpenAIServer(FakeConfig(models=["a", "b"])) as srv:
        with pytest.raises(ModelNotFoundError, match="has no model 'zzz'") as err:
            make(srv, model="zzz")
        assert "a, b" in str(err.value) and "\n" not in str(err.value)


def test_wrong_path_is_a_clear_404() -> None:
    with FakeOpenAIServer() as srv:
        settings = OpenAISettings(srv.url.replace("/v1", "/nope"), retry=FAST)
        with pytest.raises(RemoteError, match=r"not found \(HTTP 404\)"):
            OpenAIEngine(settings)


def test_refused_connection_is_a_clear_error() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(RemoteError, match="connection refused") as err:
        OpenAIEngine(OpenAISettings(f"http://127.0.0.1:{port}/v1", retry=FAST))
    assert "\n" not in str(err.value)
    assert time.monotonic() - started < 5


def test_list_remote_models(server: FakeOpenAIServer) -> None:
    assert list_remote_models(server.url, None) == ["fake-model"]


def test_settings_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    config = {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "MY_KEY",
              "openai": {"context_length": 4096, "retries": 1, "read_timeout": 7}}
    settings = settings_from(None, None, config)
    assert settings.base_url == "http://127.0.0.1:9/v1"
    assert settings.api_key == SECRET and settings.context_length == 4096
    assert settings.retry.attempts == 2 and settings.timeouts.read == 7
    assert SECRET not in repr(settings)
    with pytest.raises(InputError, match="needs a server URL"):
        settings_from(None, None, {})
    with pytest.raises(InputError, match="NOT_SET_VAR"):
        settings_from("http://127.0.0.1:9", "NOT_SET_VAR", {})


# -- streaming ------------------------------------------------------------------------------


def test_streams_tokens_then_done(engine: OpenAIEngine) -> None:
    events = list(engine.start(prompt_of(engine), Sampling(max_tokens=4)))
    tokens = [e for e in events if isinstance(e, TokenEvent)]
    assert [t.text for t in tokens] == words(TEXT)[:4]
    assert all(t.logprob is None for t in tokens)  # not asked for: not requested
    assert events[-1] == SequenceDone(0, "length", "one two three four", 4)


def test_logprobs_when_asked(engine: OpenAIEngine, server: FakeOpenAIServer) -> None:
    assert engine.supports_logprobs
    [done] = generate(engine, prompt_of(engine), Sampling(max_tokens=3, top_logprobs=2))
    assert done.logprobs == [-0.5, -0.5, -0.5]
    assert done.top_logprobs[0] == (("one", -0.5), ("alt0", -2.0))
    assert server.streams()[-1].body["logprobs"] == 2


def test_stop_strings_cut_the_text(engine: OpenAIEngine) -> None:
    [done] = generate(engine, prompt_of(engine), Sampling(max_tokens=10, stop=("four",)))
    assert done.text == "one two three " and done.finish_reason == "stop"


def test_stop_strings_beyond_the_server_four_are_cut_here_and_never_streamed(
        engine: OpenAIEngine, server: FakeOpenAIServer) -> None:
    stops = ("zz1", "zz2", "zz3", "zz4", "e fo", "ee")
    gen = engine.start(prompt_of(engine), Sampling(max_tokens=10, stop=stops))
    events = list(gen)
    gen.close()
    assert server.streams()[-1].body["stop"] == list(stops[:4])
    [done] = [e for e in events if isinstance(e, SequenceDone)]
    assert done.text == "one two thr" and done.reason == "stop"
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert tokens == ["on", "e two", " thr"]  # an "e" is held back until it is no "ee"/"e fo"


def test_prompt_too_long_overflows(engine: OpenAIEngine) -> None:
    with pytest.raises(ContextOverflowError):
        engine.start("w " * 600, Sampling())


def test_chat_reasoning_becomes_think_block() -> None:
    with FakeOpenAIServer(FakeConfig(text="42", reasoning="hmm")) as srv:
        eng = make(srv)
        [done] = generate(eng, prompt_of(eng), Sampling(max_tokens=5))
        assert done.text == "<think>\nhmm\n</think>\n\n42"
        assert done.tokens == 2  # the tags are not sampled tokens
        eng.close()


# -- n samples and the budget ---------------------------------------------------------------


def test_n_not_honoured_uses_one_request_per_sequence(engine: OpenAIEngine,
                                                      server: FakeOpenAIServer) -> None:
    done = generate(engine, prompt_of(engine), Sampling(max_tokens=3), n=3)
    assert [c.text for c in done] == ["one two three"] * 3
    streams = server.streams()
    assert len(streams) == 3 and all("n" not in r.body for r in streams)
    assert sorted(r.body["seed"] for r in streams) == [0, 1, 2]
    assert not engine.server_n()


def test_n_honoured_uses_one_request() -> None:
    cfg = FakeConfig(honour_n=True, props={"chat_template": TEMPLATE})
    with FakeOpenAIServer(cfg) as srv:
        eng = make(srv)
        done = generate(eng, prompt_of(eng), Sampling(max_tokens=3), n=3)
        assert [c.seq for c in done] == [0, 1, 2]
        assert [c.text for c in done] == ["one two three"] * 3
        [stream] = srv.streams()
        assert stream.body["n"] == 3
        eng.close()


@pytest.mark.parametrize(("n", "budget"), [(1, 4), (3, 7), (3, 2), (4, 25)])
def test_budget_is_exact(engine: OpenAIEngine, server: FakeOpenAIServer, n: int,
                         budget: int) -> None:
    done = generate(engine, prompt_of(engine), Sampling(max_tokens=8), n=n, budget=budget)
    assert sum(c.tokens for c in done) == min(budget, 8 * n)
    assert all(c.finish_reason in ("budget", "length") for c in done)
    served = sum(min(r.body["max_tokens"], 10) for r in server.streams())
    assert served <= budget  # the server was never asked to sample more than the budget


def test_budget_shares_are_redistributed(engine: OpenAIEngine) -> None:
    """Sequences that finish early leave their share to the others (resumed requests)."""
    done = generate(engine, prompt_of(engine), Sampling(max_tokens=10, stop=("two",)) ,
                    n=1, budget=3)
    assert done[0].text == "one " and done[0].finish_reason == "stop"
    done = generate(engine, prompt_of(engine), Sampling(max_tokens=10), n=2, budget=16)
    assert sorted(c.tokens for c in done) == [6, 10] or sum(c.tokens for c in done) == 16


def test_zero_budget_finishes_at_once(engine: OpenAIEngine, server: FakeOpenAIServer) -> None:
    done = generate(engine, prompt_of(engine), Sampling(), n=2, budget=0)
    assert [c.finish_reason for c in done] == ["budget", "budget"]
    assert server.streams() == []


# -- hooks ----------------------------------------------------------------------------------


def test_abort_stops_a_sequence_at_once(engine: OpenAIEngine) -> None:
    gen = engine.start(prompt_of(engine), Sampling(max_tokens=10))
    seen: list[object] = []
    for event in gen:
        seen.append(event)
        if isinstance(event, TokenEvent) and len(seen) == 2:
            gen.abort(0, "time")
    gen.close()
    assert seen[-1] == SequenceDone(0, "time", "one two", 2)


def test_inject_continues_from_the_text(engine: OpenAIEngine, server: FakeOpenAIServer) -> None:
    gen = engine.start(prompt_of(engine), Sampling(max_tokens=4))
    injected = False
    events = []
    for event in gen:
        events.append(event)
        if isinstance(event, TokenEvent) and event.text == " two" and not injected:
            gen.inject(0, " ZAP")
            injected = True
    gen.close()
    [done] = fold(iter(events))
    assert done.text.startswith("one two ZAP") and done.tokens == 4
    assert [e.text for e in events if isinstance(e, TokenEvent) and e.injected] == [" ZAP"]
    assert server.streams()[-1].body["prompt"].endswith("one two ZAP")
    assert server.streams()[-1].body["max_tokens"] == 2


def test_fork_clones_a_live_sequence(engine: OpenAIEngine) -> None:
    gen = engine.start(prompt_of(engine), Sampling(max_tokens=5))
    new: list[int] = []
    events = []
    for event in gen:
        events.append(event)
        if isinstance(event, TokenEvent) and event.text == " two" and not new:
            new = gen.fork(0, 2)
    gen.close()
    assert new == [1, 2]
    done = fold(iter(events))
    assert [c.text for c in done] == ["one two three four five"] * 3
    assert [c.tokens for c in done] == [5, 5, 5]


# -- robustness -----------------------------------------------------------------------------


def test_retries_429_and_500_with_backoff() -> None:
    cfg = FakeConfig(props={"chat_template": TEMPLATE})
    cfg.faults.extend(["429", "500"])
    with FakeOpenAIServer(cfg) as srv:
        eng = make(srv)
        started = time.monotonic()
        [done] = generate(eng, prompt_of(eng), Sampling(max_tokens=3))
        assert done.text == "one two three"
        assert len(srv.streams()) == 3
        assert time.monotonic() - started >= 0.02 + 0.04
        eng.close()


def test_persistent_429_gives_up_with_one_line() -> None:
    cfg = FakeConfig(props={"chat_template": TEMPLATE})
    cfg.faults.extend(["429"] * 5)
    with FakeOpenAIServer(cfg) as srv:
        eng = make(srv)
        with pytest.raises(RemoteError, match="HTTP 429") as err:
            generate(eng, prompt_of(eng), Sampling(max_tokens=3))
        assert "\n" not in str(err.value)
        assert len(srv.streams()) == FAST.attempts
        eng.close()


@pytest.mark.parametrize("fault", ["drop:3", "nodone:3", "drop:0"])
def test_broken_stream_is_resumed_from_the_text(fault: str) -> None:
    cfg = FakeConfig(props={"chat_template": TEMPLATE})
    cfg.faults.append(fault)
    with FakeOpenAIServer(cfg) as srv:
        eng = make(srv)
        [done] = generate(eng, prompt_of(eng), Sampling(max_tokens=6), budget=100)
        assert done.text == "one two three four five six" and done.tokens == 6
        _first, second = srv.streams()
        if fault != "drop:0":
            assert second.body["prompt"].endswith("one two three")
            assert second.body["max_tokens"] == 3
        eng.close()


def test_broken_chat_stream_after_tokens_is_an_error() -> None:
    cfg = FakeConfig()
    cfg.faults.append("drop:2")
    with FakeOpenAIServer(cfg) as srv:
        eng = make(srv)
        with pytest.raises(RemoteError, match="cannot resume"):
            generate(eng, prompt_of(eng), Sampling(max_tokens=6))
        eng.close()


def test_broken_chat_stream_before_tokens_is_retried() -> None:
    cfg = FakeConfig()
    cfg.faults.append("drop:0")
    with FakeOpenAIServer(cfg) as srv:
        eng = make(srv)
        [done] = generate(eng, prompt_of(eng), Sampling(max_tokens=2))
        assert done.text == "one two"
        eng.close()


@pytest.mark.parametrize(("fault", "message"), [("malformed", "malformed event"),
                                                ("error-event", "failed mid-stream")])
def test_bad_streams_are_clear_errors(fault: str, message: str) -> None:
    cfg = FakeConfig(props={"chat_template": TEMPLATE})
    cfg.faults.append(fault)
    with FakeOpenAIServer(cfg) as srv:
        eng = make(srv)
        with pytest.raises(RemoteError, match=message) as err:
            generate(eng, prompt_of(eng), Sampling(max_tokens=3))
        assert "\n" not in str(err.value)
        eng.close()


def test_streams_that_never_finish_are_bounded() -> None:
    cfg = FakeConfig(props={"chat_template": TEMPLATE})
    cfg.faults.extend(["drop:0"] * 10)
    with FakeOpenAIServer(cfg) as srv:
        eng = make(srv)
        with pytest.raises(RemoteError):
            generate(eng, prompt_of(eng), Sampling(max_tokens=3))
        assert len(srv.streams()) == FAST.attempts
        eng.close()


def test_concurrent_starts_from_threads(engine: OpenAIEngine) -> None:
    results: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            done = generate(engine, prompt_of(engine, f"q{i}"), Sampling(max_tokens=2 + i % 3),
                            n=2, budget=5)
            results[i] = [c.text for c in done]
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 6
    for i, texts in results.items():
        assert sum(len(words(t)) for t in texts) == min(5, 2 * (2 + i % 3))


# -- keys -----------------------------------------------------------------------------------


def test_key_is_sent_as_bearer_and_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KEY", SECRET)
    with FakeOpenAIServer(FakeConfig(api_key=SECRET)) as srv:
        eng = OpenAIEngine(settings_from(srv.url, "FAKE_KEY", {}))
        assert srv.requests[0].headers["Authorization"] == f"Bearer {SECRET}"
        assert SECRET not in repr(eng.settings)
        eng.close()
        monkeypatch.setenv("FAKE_KEY", "wrong-" + SECRET)
        with pytest.raises(RemoteError, match="HTTP 401") as err:
            OpenAIEngine(settings_from(srv.url, "FAKE_KEY", {}))
        assert SECRET not in str(err.value) and "FAKE_KEY" in str(err.value)


def test_load_engine_registration(server: FakeOpenAIServer) -> None:
    loaded = load_engine("openai", EngineOptions(base_url=server.url))
    assert loaded.model_id == "fake-model" and loaded.style == "prompted"
    loaded.engine.close()


def _ponder(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-m", "ponder", *args], capture_output=True,
                          text=True, timeout=120, cwd=root, env={**os.environ, **env})


def test_cli_ask_and_bad_key_through_the_fake(tmp_path: Path) -> None:
    text = "<think>easy</think> The answer is \\boxed{4}."
    with FakeOpenAIServer(FakeConfig(text=text, api_key=SECRET,
                                     props={"chat_template": TEMPLATE})) as srv:
        env = {"FAKE_KEY": SECRET, "PONDER_CONFIG": str(tmp_path / "none.toml")}
        ok = _ponder(["ask", "--engine", "openai", "--base-url", srv.url, "--api-key-env",
                      "FAKE_KEY", "--quiet", "What is 2+2?"], env)
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "4"
        bad = _ponder(["ask", "--engine", "openai", "--base-url", srv.url, "--api-key-env",
                       "FAKE_KEY", "What is 2+2?"], {**env, "FAKE_KEY": "nope-" + SECRET})
        assert bad.returncode != 0
        assert "HTTP 401" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
        assert SECRET not in bad.stderr + bad.stdout + ok.stderr + ok.stdout
