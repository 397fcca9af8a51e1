"""A small, robust HTTP client for OpenAI-compatible servers.

Timeouts on connect and read, retries with exponential backoff on refused or reset
connections, 429 and 5xx (honouring a short Retry-After), and one-line
:class:`~ponder.errors.RemoteError` messages for everything else. The API key is sent as a
bearer token and never appears in a message: server texts quoted in errors are redacted.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from ponder.engines._sse import SSEStream, error_text
from ponder.errors import InputError, RemoteError

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
OPTIONAL_MISS = frozenset({400, 404, 405, 422, 501})
RETRYABLE_TRANSPORT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError,
                       httpx.ReadError, httpx.WriteError, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; the k-th retry waits base * 2**k seconds, at most `cap`."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 8.0

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        wait = min(self.cap, self.base * 2.0 ** retry)
        if retry_after is not None:
            wait = min(self.cap, max(wait, retry_after))
        return wait


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    read: float = 300.0

    def httpx(self) -> httpx.Timeout:
        return httpx.Timeout(self.read, connect=self.connect, pool=self.read)


def normalize_base_url(url: str) -> str:
    """`http://host:port` becomes `http://host:port/v1`; trailing slashes go."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InputError(f"--base-url {safe_url(text)!r} is not an http(s) URL",
                         "e.g. http://127.0.0.1:8000/v1")
    if not parts.path:
        text += "/v1"
    return text


def safe_url(url: str) -> str:
    """The URL without any user:password part, fit for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def server_root(base_url: str) -> str:
    """Where non-OpenAI endpoints live (/props, /tokenize): the base URL less its /v1."""
    return re.sub(r"/v1$", "", base_url)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class RemoteClient:
    """One connection pool to one server, safe to share between threads."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        api_key_env: str | None = None,
        timeouts: Timeouts = Timeouts(),
        retry: RetryPolicy = RetryPolicy(),
        max_connections: int = 8,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.root = server_root(self.base_url)
        self.retry = retry
        self.timeouts = timeouts
        self._key = api_key or None
        self._key_env = api_key_env
        headers = {"Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections)
        self._client = httpx.Client(headers=headers, timeout=timeouts.httpx(), limits=limits,
                                    trust_env=False)

    @property
    def display_url(self) -> str:
        return safe_url(self.base_url)

    def close(self) -> None:
        self._client.close()

    # -- requests -------------------------------------------------------------------------

    def get_json(self, path: str, *, root: bool = False) -> Any:
        return self._json("GET", path, None, root=root)

    def post_json(self, path: str, body: dict[str, Any], *, root: bool = False) -> Any:
        return self._json("POST", path, body, root=root)

    def probe_json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """An optional endpoint on the server root: None when the server lacks it."""
        request = self._request(method, path, body, root=True)
        response = self._send(request, stream=False, optional=True)
        if response is None:
            return None
        try:
            return response.json()
        except ValueError:
            return None

    @contextlib.contextmanager
    def stream(self, path: str, body: dict[str, Any],
               cancel: threading.Event | None = None) -> Iterator[SSEStream]:
        """POST `body` with stream=true; yields the parsed event stream."""
        request = self._request("POST", path, body, root=False)
        response = self._send(request, stream=True, cancel=cancel)
        assert response is not None
        try:
            yield SSEStream.of(response)
        finally:
            response.close()

    def _json(self, method: str, path: str, body: dict[str, Any] | None, *, root: bool) -> Any:
        response = self._send(self._request(method, path, body, root=root), stream=False)
        assert response is not None
        try:
            return response.json()
        except ValueError:
            raise RemoteError(f"{self._where(path, root)} did not answer with JSON",
                              "is --base-url an OpenAI-compatible API?") from None

    def _request(self, method: str, path: str, body: dict[str, Any] | None,
                 *, root: bool) -> httpx.Request:
        url = (self.root if root else self.base_url) + path
        try:
            return self._client.build_request(method, url, json=body)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol):
            raise InputError(f"--base-url {self.display_url!r} is not a valid URL") from None

    def _send(self, request: httpx.Request, *, stream: bool, optional: bool = False,
              cancel: threading.Event | None = None) -> httpx.Response | None:
        """Send with retries; raise RemoteError on failure (None: optional endpoint missing)."""
        path = request.url.path
        for attempt in range(self.retry.attempts):
            last = attempt + 1 >= self.retry.attempts
            try:
                response = self._client.send(request, stream=stream)
            except RETRYABLE_TRANSPORT as exc:
                if last or not _wait(self.retry.delay(attempt), cancel):
                    raise self._transport_error(exc, attempt + 1) from None
                continue
            except httpx.TimeoutException as exc:
                raise self._transport_error(exc, attempt + 1) from None
            except httpx.HTTPError as exc:
                raise self._transport_error(exc, attempt + 1) from None
            status = response.status_code
            if status < 400:
                return response
            detail = self._detail(response)
            if optional and status in OPTIONAL_MISS:
                return None
            wait = self.retry.delay(attempt, _retry_after(response))
            if status in RETRY_STATUS and not last and _wait(wait, cancel):
                continue
            raise self.status_error(status, detail, path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _detail(self, response: httpx.Response) -> str:
        try:
            response.read()
            try:
                text = error_text(response.json())
            except ValueError:
                text = error_text(response.text) if response.text else response.reason_phrase
        finally:
            response.close()
        return self.redact(text)

    # -- errors ---------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """`text` with the API key blanked out, whatever the server quoted."""
        return text.replace(self._key, "***") if self._key else text

    def _where(self, path: str, root: bool = False) -> str:
        return safe_url((self.root if root else self.base_url) + path) if path else \
            self.display_url

    def status_error(self, status: int, detail: str, path: str) -> RemoteError:
        where = self.display_url
        if status in (401, 403):
            if self._key is None:
                hint = "no API key was sent: pass --api-key-env NAME of a variable holding it"
            elif self._key_env:
                hint = f"check the key in ${self._key_env}"
            else:
                hint = "check the API key"
            return RemoteError(f"the server at {where} refused the request: HTTP {status} "
                               f"({'unauthorized' if status == 401 else 'forbidden'})", hint)
        if status == 404 and "model" in detail.lower():
            return RemoteError(f"the server at {where} does not serve that model: {detail}",
                               "list its models with `ponder models list --engine openai`")
        if status == 404:
            return RemoteError(f"{safe_url(self.root + path)} was not found (HTTP 404)",
                               "is --base-url right? it usually ends in /v1")
        return RemoteError(f"the server at {where} answered HTTP {status}: {detail}")

    def _transport_error(self, exc: httpx.HTTPError, attempts: int) -> RemoteError:
        where = self.display_url
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        if isinstance(exc, httpx.ConnectTimeout):
            return RemoteError(f"timed out connecting to {where}{tries}",
                               "is the server running and reachable?")
        if isinstance(exc, httpx.ConnectError):
            reason = "connection refused" if "refused" in str(exc).lower() else \
                self.redact(str(exc).splitlines()[0] if str(exc) else "cannot connect")
            return RemoteError(f"cannot connect to {where}: {reason}{tries}",
                               "is the server running? check --base-url")
        if isinstance(exc, httpx.TimeoutException):
            return RemoteError(f"the server at {where} did not answer within "
                               f"{self.timeouts.read:g}s")
        name = type(exc).__name__
        return RemoteError(f"lost the connection to {where}{tries}: {name}")

    def dropped_error(self, exc: BaseException) -> RemoteError:
        """An error for a stream that broke after it began."""
        if isinstance(exc, httpx.TimeoutException):
            return RemoteError(f"the server at {self.display_url} stopped sending for "
                               f"{self.timeouts.read:g}s in the middle of a stream")
        return RemoteError(f"the stream from {self.display_url} broke "
                           f"({type(exc).__name__})")


def _wait(seconds: float, cancel: threading.Event | None) -> bool:
    """Sleep before a retry; False when `cancel` was set meanwhile (stop retrying)."""
    if cancel is None:
        time.sleep(seconds)
        return True
    return not cancel.wait(seconds)
