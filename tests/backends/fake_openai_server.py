"""A real HTTP server on 127.0.0.1 that speaks the chat-completions protocol, for
testing OpenAI-compatible backends over a real socket.

Replies are scripted: `queue(...)` adds replies taken in order (for every request, or
only for requests whose last message has a given content); when no queued reply
matches, the `always(...)` reply answers (by default an immediate "Answer: 5"). The
server records every request it receives, headers included, and the most requests it
ever had in flight at once.

    with running_fake_server() as server:
        server.queue(status(429, retry_after="0"), ok("Answer: 3"))
        ... OpenAIConfig(base_url=server.base_url, ...) ...
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "fake-model"


@dataclass(frozen=True)
class Reply:
    """What the server does with one chat-completions request."""

    status: int = 200
    text: str = "Answer: 5"  # message content of a 200 reply
    echo: bool = False  # answer "echo: <last message content>" instead of `text`
    finish_reason: str = "stop"
    delay_s: float = 0.0  # sleep before answering (beyond the client timeout = "slow")
    body: bytes | None = None  # raw body, replacing the normal JSON (malformed replies)
    headers: tuple[tuple[str, str], ...] = ()


def ok(text: str = "Answer: 5", *, finish_reason: str = "stop", delay_s: float = 0.0) -> Reply:
    return Reply(text=text, finish_reason=finish_reason, delay_s=delay_s)


def echo(*, delay_s: float = 0.0) -> Reply:
    return Reply(echo=True, delay_s=delay_s)


def slow(delay_s: float, text: str = "Answer: 5") -> Reply:
    return Reply(text=text, delay_s=delay_s)


def status(code: int, *, retry_after: str | None = None, message: str = "scripted") -> Reply:
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    body = json.dumps({"error": {"message": message, "type": "fake", "code": code}})
    return Reply(status=code, body=body.encode(), headers=headers)


def malformed_json() -> Reply:
    return Reply(body=b'{"id": "chatcmpl-1", "choices": [')


def missing_fields() -> Reply:
    return Reply(body=json.dumps({"id": "chatcmpl-1", "object": "chat.completion"}).encode())


def fake_tokens(text: str) -> list[str]:
    """How the fake server splits a reply into tokens: words with their leading space."""
    tokens: list[str] = []
    for i, word in enumerate(text.split(" ")):
        tokens.append(word if i == 0 else " " + word)
    return [t for t in tokens if t]


def fake_logprobs(text: str) -> list[float]:
    """The log-prob the fake server reports for each token of `text`."""
    return [-0.25 * (i + 1) for i in range(len(fake_tokens(text)))]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # the parsed JSON body, or None


@dataclass
class FakeOpenAIServer:
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    max_in_flight: int = 0
    models_status: int = 200  # status of GET /models (404 for servers that lack it)
    chat_route: bool = True  # False: POST /chat/completions answers 404 too (a wrong base_url)
    # Consulted first: the reply to a request's messages [(role, content), ...], or None
    # to fall through to the queues (a model whose answer depends on its whole prompt).
    responder: Callable[[list[tuple[str, str]]], Reply | None] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._by_prompt: dict[str, deque[Reply]] = {}
        self._default: dict[str | None, Reply] = {None: ok()}
        self._in_flight = 0
        self.stopping = threading.Event()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def queue(self, *replies: Reply, prompt: str | None = None) -> None:
        """Replies taken one per request, in order; with `prompt`, only for requests
        whose last message content equals it."""
        with self._lock:
            target = self._queue if prompt is None else self._by_prompt.setdefault(prompt, deque())
            target.extend(replies)

    def always(self, reply: Reply, *, prompt: str | None = None) -> None:
        """The reply once the queues are empty (for every request, or one prompt)."""
        with self._lock:
            self._default[prompt] = reply

    def chat_requests(self, prompt: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r for r in self.requests
                if r.path.endswith("/chat/completions")
                and (prompt is None or _last_content(r.body) == prompt)
            ]

    def _next_reply(self, body: Any) -> Reply:
        prompt = _last_content(body)
        if self.responder is not None:
            reply = self.responder([(m.get("role"), m.get("content")) for m in body["messages"]])
            if reply is not None:
                return reply
        with self._lock:
            if prompt in self._by_prompt and self._by_prompt[prompt]:
                return self._by_prompt[prompt].popleft()
            if self._queue:
                return self._queue.popleft()
            return self._default.get(prompt, self._default[None])

    def _enter(self, recorded: Recorded) -> None:
        with self._lock:
            self.requests.append(recorded)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


def _last_content(body: Any) -> str | None:
    try:
        return body["messages"][-1]["content"]
    except (KeyError, IndexError, TypeError):
        return None


def _completion_body(reply: Reply, request: Any) -> dict[str, Any]:
    text = f"echo: {_last_content(request)}" if reply.echo else reply.text
    logprobs = None
    if request.get("logprobs"):
        logprobs = {
            "content": [
                {"token": t, "logprob": lp, "bytes": list(t.encode()), "top_logprobs": []}
                for t, lp in zip(fake_tokens(text), fake_logprobs(text))
            ]
        }
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in request["messages"])
    completion_tokens = len(fake_tokens(text))
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", MODEL),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": logprobs,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, code: int, body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout); nothing to answer

        def do_GET(self) -> None:
            server._enter(Recorded("GET", self.path, dict(self.headers), None))
            try:
                if self.path.rstrip("/").endswith("/models") and server.models_status == 200:
                    body = {"object": "list", "data": [{"id": MODEL, "object": "model"}]}
                    self._send(200, json.dumps(body).encode())
                else:
                    self._send(server.models_status if self.path.endswith("/models") else 404,
                               b'{"error": {"message": "not found"}}')
            finally:
                server._leave()

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                request = json.loads(raw)
            except ValueError:
                request = None
            server._enter(Recorded("POST", self.path, dict(self.headers), request))
            try:
                if not self.path.endswith("/chat/completions") or not isinstance(request, dict) or not server.chat_route:
                    self._send(404, b'{"error": {"message": "unknown route"}}')
                    return
                if "messages" not in request:  # as a real server refuses an empty request
                    self._send(400, b'{"error": {"message": "messages is required"}}')
                    return
                reply = server._next_reply(request)
                if reply.delay_s and server.stopping.wait(reply.delay_s):
                    return
                body = reply.body
                if body is None:
                    body = json.dumps(_completion_body(reply, request)).encode()
                self._send(reply.status, body, reply.headers)
            finally:
                server._leave()

    return Handler


@contextmanager
def running_fake_server(**kwargs: Any) -> Iterator[FakeOpenAIServer]:
    """Start a fake server on a free port of 127.0.0.1; stop it on exit."""
    server = FakeOpenAIServer(**kwargs)
    httpd = ThreadingHTTPServer((server.host, server.port), _handler(server))
    httpd.daemon_threads = True
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()  # wake slow replies
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=2)
