"""A tiny OpenAI-compatible server on loopback for fast tests, and an auth-checking proxy.

`FakeOpenAIServer` streams a fixed text, word by word, continuing where a prompt already
ends with part of it (so resumed requests can be checked). `faults` queues misbehaviour
for the next streaming requests: "429", "500", "malformed", "error-event", "drop:K" (send
K tokens, then break the connection), "nodone:K" (K tokens, then end the body cleanly
without a finish reason or [DONE]), "stall:S" (open the stream, then send nothing for S
seconds). Every request is recorded with its headers.
Everything binds to 127.0.0.1 and runs in daemon threads.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_TOKEN_RE = re.compile(r"\s*\S+|\s+")


def words(text: str) -> list[str]:
    return _TOKEN_RE.findall(text)


@dataclass
class Recorded:
    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeConfig:
    text: str = "one two three four five six seven eight nine ten"
    models: list[str] = field(default_factory=lambda: ["fake-model"])
    honour_n: bool = False
    props: dict[str, Any] | None = None
    tokenize: bool = True
    completions: bool = True
    api_key: str | None = None
    token_delay: float = 0.0
    faults: deque[str] = field(default_factory=deque)
    reasoning: str = ""


class _NoDelay(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive without Nagle's 40 ms stalls between small writes."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _Handler(_NoDelay):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -------------------------------------------------------------------------

    def _body(self) -> dict[str, Any]:
        size = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(size) if size else b""
        try:
            data = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            data = {}
        return data if isinstance(data, dict) else {}

    def _json(self, status: int, payload: object) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: str) -> None:
        raw = data.encode()
        self.wfile.write(f"{len(raw):x}\r\n".encode() + raw + b"\r\n")
        self.wfile.flush()

    def _event(self, payload: object) -> None:
        self._chunk("data: " + (payload if isinstance(payload, str) else json.dumps(payload))
                    + "\n\n")

    def _record(self, body: dict[str, Any]) -> Recorded:
        rec = Recorded(self.command, self.path, body, dict(self.headers.items()))
        with self.server.lock:
            self.server.requests.append(rec)
        return rec

    def _authorized(self) -> bool:
        key = self.server.config.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, {"error": {"message": "Invalid API key", "type": "auth"}})
        return False

    # -- routes ---------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._record({})
        if not self._authorized():
            return
        cfg = self.server.config
        if self.path == "/v1/models":
            self._json(200, {"object": "list",
                             "data": [{"id": m, "object": "model"} for m in cfg.models]})
        elif self.path == "/props" and cfg.props is not None:
            self._json(200, cfg.props)
        else:
            self._json(404, {"detail": "Not Found"})

    def do_POST(self) -> None:
        body = self._body()
        self._record(body)
        if not self._authorized():
            return
        cfg = self.server.config
        if self.path in ("/extras/tokenize/count", "/tokenize") and cfg.tokenize:
            text = str(body.get("input") or body.get("content") or "")
            self._json(200, {"count": len(words(text))})
        elif self.path == "/v1/completions" and cfg.completions:
            self._generate(body, chat=False)
        elif self.path == "/v1/chat/completions":
            self._generate(body, chat=True)
        else:
            self._json(404, {"detail": "Not Found"})

    # -- generation -----------------------------------------------------------------------

    def _plan(self, body: dict[str, Any], chat: bool) -> list[str]:
        """The tokens this request produces: the text, continued after any prefix."""
        if chat:
            messages = body.get("messages") or []
            last = messages[-1] if messages else {}
            prompt = last.get("content", "") if last.get("role") == "assistant" else ""
        else:
            prompt = str(body.get("prompt", ""))
        tokens = words(self.server.config.text)
        start = max(j for j in range(len(tokens) + 1) if prompt.endswith("".join(tokens[:j])))
        return tokens[start:]

    def _generate(self, body: dict[str, Any], chat: bool) -> None:
        fault = ""
        if body.get("stream"):
            with self.server.lock:
                fault = self.server.config.faults.popleft() if self.server.config.faults else ""
        if fault in ("429", "500"):
            self._json(int(fault), {"error": {"message": f"fake {fault}"}})
            return
        n = int(body.get("n") or 1) if self.server.config.honour_n else 1
        limit = int(body.get("max_tokens") or 16)
        plan = self._plan(body, chat)
        out = plan[:limit]
        stops = [s for s in body.get("stop") or [] if s]
        reason = "length" if len(plan) > limit else "stop"
        text = "".join(out)
        for s in stops:
            if s in text:
                text, reason = text[: text.index(s)], "stop"
                out = words(text)
        if not body.get("stream"):
            choices = [self._choice(i, "".join(out), body, chat, reason, final=True)
                       for i in range(n)]
            self._json(200, {"object": "text_completion", "choices": choices,
                             "usage": {"completion_tokens": len(out) * n}})
            return
        self._stream(out, n, body, chat, reason, fault)

    def _choice(self, index: int, text: str, body: dict[str, Any], chat: bool,
                reason: str | None, final: bool = False) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index, "finish_reason": reason}
        want = body.get("logprobs")
        if chat:
            key = "message" if final else "delta"
            choice[key] = {"content": text} if text else {}
            if want and text:
                k = int(body.get("top_logprobs") or 1)
                choice["logprobs"] = {"content": [{
                    "token": text, "logprob": -0.5,
                    "top_logprobs": [{"token": text, "logprob": -0.5}]
                    + [{"token": f"alt{j}", "logprob": -2.0 - j} for j in range(k - 1)]}]}
        else:
            choice["text"] = text
            if want and text:
                k = int(want)
                top = {text: -0.5} | {f"alt{j}": -2.0 - j for j in range(k - 1)}
                choice["logprobs"] = {"tokens": [text], "token_logprobs": [-0.5],
                                      "top_logprobs": [top]}
        return choice

    def _stream(self, out: list[str], n: int, body: dict[str, Any], chat: bool, reason: str,
                fault: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if fault.startswith("stall:"):
            self._chunk(": ping\n\n")
            time.sleep(float(fault.split(":")[1]))
            return
        if fault == "malformed":
            self._chunk("data: {not json\n\n")
            self._chunk("")
            return
        if fault == "error-event":
            self._event({"error": {"message": "fake failure mid-stream"}})
            self._chunk("")
            return
        cut = int(fault.split(":")[1]) if ":" in fault else None
        self._chunk(": ping\n\n")
        if chat and self.server.config.reasoning:
            for i in range(n):
                self._event({"choices": [{"index": i, "delta": {
                    "reasoning_content": self.server.config.reasoning}, "finish_reason": None}]})
        try:
            for k, tok in enumerate(out):
                if cut is not None and k == cut:
                    return self._break(fault)
                for i in range(n):
                    self._event({"choices": [self._choice(i, tok, body, chat, None)]})
                time.sleep(self.server.config.token_delay)
            if cut is not None:
                return self._break(fault)
            for i in range(n):
                self._event({"choices": [self._choice(i, "", body, chat, reason)]})
            self._event("[DONE]")
            self._chunk("")
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _break(self, fault: str) -> None:
        if fault.startswith("nodone"):
            self._chunk("")  # a clean end of body: no finish reason, no [DONE]
            return
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk: a broken stream


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, config: FakeConfig) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.config = config
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.errors: list[BaseException] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep handler failures (a client that hung up, say) off the tests' stderr, which
        is the output under test; they are kept in `errors`."""
        error = sys.exc_info()[1]
        if error is not None:
            with self.lock:
                self.errors.append(error)


class FakeOpenAIServer:
    """Start with `with FakeOpenAIServer(FakeConfig(...)) as srv:`; `srv.url` ends in /v1."""

    def __init__(self, config: FakeConfig | None = None) -> None:
        self.config = config or FakeConfig()
        self._server = _Server(self.config)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[Recorded]:
        with self._server.lock:
            return list(self._server.requests)

    def streams(self) -> list[Recorded]:
        return [r for r in self.requests if r.body.get("stream")]

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class _ProxyHandler(_NoDelay):
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _deny(self) -> None:
        data = b'{"error": {"message": "bad credentials"}}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _forward(self) -> None:
        with self.server.lock:
            self.server.seen.append(self.headers.get("Authorization", ""))
        if self.headers.get("Authorization") != f"Bearer {self.server.key}":
            self._deny()
            return
        size = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(size) if size else None
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body,
                             headers={"Content-Type": "application/json"})
            resp = upstream.getresponse()
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.getheader("Content-Type", "text/plain"))
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while data := resp.read1(65536):
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        finally:
            upstream.close()

    do_GET = _forward
    do_POST = _forward


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: int, key: str) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = upstream
        self.key = key
        self.lock = threading.Lock()
        self.seen: list[str] = []


class AuthProxy:
    """Forwards to a loopback server when the bearer key matches, else answers 401."""

    def __init__(self, upstream_port: int, key: str) -> None:
        self._server = _ProxyServer(upstream_port, key)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def seen(self) -> list[str]:
        with self._server.lock:
            return list(self._server.seen)

    def __enter__(self) -> AuthProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
