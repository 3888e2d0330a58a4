"""A backend for any OpenAI-compatible chat-completions server (OpenAI, vLLM, llama.cpp,
Ollama, LM Studio, ...).

Each `GenerationRequest` becomes one POST to `{base_url}/chat/completions`; a batch runs
on a thread pool with at most `concurrency` requests in flight. Transient failures
(HTTP 408/429/5xx, timeouts, dropped connections, malformed bodies) are retried with
exponential backoff and jitter, honouring `Retry-After`; a request that still fails
comes back as a `Completion` with `finish_reason="error"`, so one bad request never
sinks a batch.

The API key is read from an environment variable when the backend is built and lives
only in the HTTP client's headers: it is never part of a config, a repr, a log line or
an error message.

Reachability is checked once, when the backend is built (a GET of `{base_url}/models`
with a short timeout), so a wrong `base_url` fails before any match starts rather than
as a batch of error completions.
"""

from __future__ import annotations

import copy
import email.utils
import logging
import os
import random
import re
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from sparring.backends.base import Completion, GenerationRequest, ScoredOption, ScoreRequest
from sparring.errors import SparringError

import httpx

log = logging.getLogger(__name__)

_MAX_RETRIES_LIMIT = 20  # beyond this a run stalls for minutes on a dead server
_PROBE_TIMEOUT_S = 5.0  # the reachability probe never waits longer than this
_RETRYABLE_STATUS = {408, 429}  # plus every 5xx
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Config values may come from user-written references (`openai(concurrency=four)`):
# check their types so a mistake reads as a message, not a TypeError deep inside.
_FIELD_TYPES = {"str": str, "float": (int, float), "int": int, "bool": bool}
_TYPE_WORDS = {"str": "text", "float": "a number", "int": "a whole number", "bool": "true or false"}


@dataclass(frozen=True)
class OpenAIConfig:
    """Where the server is and how to talk to it. Holds no secret: safe to serialise."""

    model: str
    """Model name the server knows, sent as `model` in every request."""
    base_url: str = "https://api.openai.com/v1"
    """Root of the API, up to and including the version, e.g. http://127.0.0.1:8000/v1
    for a local vLLM or llama.cpp server."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key; "" for a server that needs
    no key. The key itself never goes into a config."""
    timeout_s: float = 60.0
    """Seconds to wait on each attempt for connecting, sending, and each read of the
    response (httpx semantics: a per-phase limit, not a total)."""
    max_retries: int = 4
    """Extra attempts after the first for a retryable failure; 0 disables retries."""
    backoff_s: float = 0.5
    """Wait before the first retry; doubles on each further retry, times a jitter
    factor drawn from [0.5, 1)."""
    max_backoff_s: float = 30.0
    """Cap on any single wait between attempts, a server's Retry-After included."""
    concurrency: int = 8
    """Most requests in flight at once, over all batches of this backend."""
    logprobs: bool = True
    """Ask the server for the log-probability of each generated token."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = _FIELD_TYPES[f.type]
            if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
                raise SparringError(
                    f"{f.name} must be {_TYPE_WORDS[f.type]}, got {type(value).__name__} "
                    f"{'(value hidden)' if f.name == 'api_key_env' else repr(value)}"
                )
        if not re.match(r"https?://[^/\s]+", self.base_url):
            raise SparringError(
                f"base_url {self.base_url!r} is not an http(s) URL: "
                "write it like http://127.0.0.1:8000/v1"
            )
        if not self.model.strip():
            raise SparringError("model is empty: give the model name the server serves")
        if self.api_key_env and not _ENV_NAME.fullmatch(self.api_key_env):
            # Never echo the value: users sometimes paste the key itself here.
            raise SparringError(
                "api_key_env must be the name of an environment variable (letters, "
                "digits and underscores, e.g. OPENAI_API_KEY), not the key itself; "
                "use '' for a server that needs no key"
            )
        if not self.timeout_s > 0:
            raise SparringError(f"timeout_s must be > 0 seconds, got {self.timeout_s}")
        if not 0 <= self.max_retries <= _MAX_RETRIES_LIMIT:
            raise SparringError(
                f"max_retries must be between 0 and {_MAX_RETRIES_LIMIT}, "
                f"got {self.max_retries}"
            )
        if not self.backoff_s >= 0:
            raise SparringError(f"backoff_s must be >= 0 seconds, got {self.backoff_s}")
        if not self.max_backoff_s >= self.backoff_s:
            raise SparringError(
                f"max_backoff_s ({self.max_backoff_s}) must be >= backoff_s "
                f"({self.backoff_s}): raise max_backoff_s or lower backoff_s"
            )
        if self.concurrency < 1:
            raise SparringError(
                f"concurrency must be >= 1 request in flight, got {self.concurrency}"
            )

    @property
    def root(self) -> str:
        return self.base_url.rstrip("/")


@dataclass
class OpenAIStats:
    """What the backend did, for the run report."""

    requests: int = 0  # generation requests answered (one per GenerationRequest)
    attempts: int = 0  # HTTP calls made, retries included
    retries: int = 0  # attempts after the first
    failures: int = 0  # requests that ended as error completions
    errors: Counter[str] = field(default_factory=Counter)
    # failed attempts by kind: "http_429", "http_500", "ReadTimeout", "ConnectError",
    # "malformed_json", "malformed_response", ...

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "attempts": self.attempts,
            "retries": self.retries,
            "failures": self.failures,
            "errors": dict(self.errors),
        }


@dataclass
class _Failure:
    """One failed attempt."""

    kind: str  # key of OpenAIStats.errors
    reason: str  # short text for Completion.error
    retryable: bool
    retry_after_s: float | None = None


class OpenAIBackend:
    """Generation through an OpenAI-compatible chat-completions server.

    Token ids are not part of the OpenAI protocol, so `Completion.token_ids` stays
    empty; `logprobs` is filled when the server returns them. Scoring is not possible.
    """

    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config
        self.name = f"openai:{config.model}"
        headers = {}
        if config.api_key_env:
            key = os.environ.get(config.api_key_env)
            if not key:
                state = "is not set" if key is None else "is empty"
                raise SparringError(
                    f"environment variable {config.api_key_env} {state}: export it, "
                    "or set api_key_env='' for a server that needs no key"
                )
            headers["Authorization"] = f"Bearer {key}"  # kept only in the client
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(config.timeout_s),
            limits=httpx.Limits(
                max_connections=config.concurrency,
                max_keepalive_connections=config.concurrency,
            ),
        )
        self._slots = threading.BoundedSemaphore(config.concurrency)
        self._lock = threading.Lock()  # guards _stats
        self._stats = OpenAIStats()
        self._jitter = random.Random()  # jitter only spreads retries; results never see it
        self._closed = False
        try:
            self._probe()
        except BaseException:
            self._client.close()
            raise

    def __repr__(self) -> str:
        return f"OpenAIBackend(base_url={self.config.base_url!r}, model={self.config.model!r})"

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stats(self) -> OpenAIStats:
        """A snapshot of the counters so far."""
        with self._lock:
            return copy.deepcopy(self._stats)

    def generate(self, requests: list[GenerationRequest]) -> list[Completion]:
        if self._closed:
            raise SparringError(f"{self!r} is closed: build a new backend")
        if not requests:
            return []
        workers = min(self.config.concurrency, len(requests))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai") as pool:
            return list(pool.map(self._generate_one, requests))

    def score(self, requests: list[ScoreRequest]) -> list[list[ScoredOption]]:
        raise SparringError(
            "the OpenAI chat protocol cannot score options (it returns log-probabilities "
            "of generated tokens only, not of given text): use free-text mode with this "
            "backend, or a local backend (hf, vllm) for scored choice"
        )

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    # -- internals -------------------------------------------------------------------

    def _probe(self) -> None:
        """Fail fast, with one clear message, when nothing answers at base_url."""
        url = f"{self.config.root}/models"
        timeout = min(self.config.timeout_s, _PROBE_TIMEOUT_S)
        try:
            response = self._client.get(url, timeout=timeout)
        except httpx.TransportError as exc:
            raise SparringError(
                f"cannot reach {self.config.base_url}: {_transport_reason(exc)}. "
                "Is the server running? Check base_url"
            ) from None
        if response.status_code == 404:
            self._probe_chat_route(timeout)  # many servers lack /models; a wrong base_url lacks both
        # A refused key will fail every request.
        if response.status_code in (401, 403) and self.config.api_key_env:
            raise SparringError(
                f"{self.config.base_url} refused the API key from "
                f"${self.config.api_key_env} (HTTP {response.status_code}): "
                "check the key, or that api_key_env names the right variable"
            )
        if response.status_code in (401, 403):
            raise SparringError(
                f"{self.config.base_url} wants an API key (HTTP {response.status_code}): "
                "set api_key_env to the environment variable that holds it"
            )

    def _probe_chat_route(self, timeout: float) -> None:
        """After a 404 for /models: an empty chat request is refused (400/422) by a
        server that has the route, and answered 404 at a base_url that is wrong."""
        url = f"{self.config.root}/chat/completions"
        try:
            response = self._client.post(url, json={}, timeout=timeout)
        except httpx.TransportError as exc:
            raise SparringError(f"cannot reach {self.config.base_url}: {_transport_reason(exc)}. "
                                "Is the server running? Check base_url") from None
        if response.status_code == 404:
            raise SparringError(
                f"{self.config.base_url} answers 404 (not found) for /models and /chat/completions: "
                "it is not an OpenAI-compatible API root. Check base_url; it usually ends in /v1"
            )

    def _payload(self, request: GenerationRequest) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.config.model,
            "messages": [{"role": r, "content": c} for r, c in request.messages],
            "max_tokens": request.max_new_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "seed": request.seed,
        }
        if self.config.logprobs:
            payload["logprobs"] = True
        return payload

    def _generate_one(self, request: GenerationRequest) -> Completion:
        payload = self._payload(request)
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            if attempt:
                self._count(retries=1)
            with self._slots:
                result = self._attempt(payload)
            if isinstance(result, Completion):
                self._count(requests=1)
                return result
            self._count(error=result.kind)
            if not result.retryable or attempt == attempts - 1:
                break
            delay = self._delay(attempt, result.retry_after_s)
            log.debug("retrying after %s in %.2f s (attempt %d of %d)",
                      result.reason, delay, attempt + 2, attempts)
            time.sleep(delay)
        tries = attempt + 1
        error = result.reason if tries == 1 else f"{result.reason} (gave up after {tries} attempts)"
        log.warning("request to %s failed: %s", self.config.base_url, error)
        self._count(requests=1, failures=1)
        return Completion(text="", finish_reason="error", error=error)

    def _attempt(self, payload: dict[str, Any]) -> Completion | _Failure:
        self._count(attempts=1)
        try:
            response = self._client.post(f"{self.config.root}/chat/completions", json=payload)
        except httpx.TransportError as exc:
            kind = type(exc).__name__
            return _Failure(kind, kind, retryable=True)
        status = response.status_code
        if status != 200:
            retryable = status in _RETRYABLE_STATUS or status >= 500
            retry_after = _retry_after_s(response.headers.get("retry-after"))
            return _Failure(f"http_{status}", self._status_reason(response), retryable, retry_after)
        try:
            body = response.json()
        except ValueError:
            return _Failure("malformed_json", "malformed JSON in response", retryable=True)
        return _parse_completion(body)

    def _status_reason(self, response: httpx.Response) -> str:
        status = response.status_code
        reason = f"HTTP {status}"
        if status in (401, 403):
            return f"{reason}: the server refused the API key"
        if 400 <= status < 500 and status not in _RETRYABLE_STATUS:
            # The server's own message says what it disliked; keep it short.
            try:
                message = str(response.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                message = response.text
            message = " ".join(message.split())[:200]
            if message:
                reason += f": {message}"
            if status == 404:
                reason += " (check base_url; it usually ends in /v1)"
            elif self.config.logprobs and "logprob" in message.lower():
                reason += " (set logprobs=False if the server cannot return them)"
        return reason

    def _delay(self, attempt: int, retry_after_s: float | None) -> float:
        """Seconds before retry number `attempt + 1`."""
        cap = self.config.max_backoff_s
        if retry_after_s is not None:
            return min(retry_after_s, cap)
        # Exponential backoff with jitter, so a batch hit by one 429 does not come
        # back in lockstep.
        return min(self.config.backoff_s * 2**attempt * (0.5 + 0.5 * self._jitter.random()), cap)

    def _count(self, *, requests: int = 0, attempts: int = 0, retries: int = 0,
               failures: int = 0, error: str | None = None) -> None:
        with self._lock:
            self._stats.requests += requests
            self._stats.attempts += attempts
            self._stats.retries += retries
            self._stats.failures += failures
            if error is not None:
                self._stats.errors[error] += 1


def _parse_completion(body: Any) -> Completion | _Failure:
    """Read text, finish reason and token log-probs from a chat-completions body."""
    try:
        choice = body["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return _Failure("malformed_response", "response lacks choices[0].message.content",
                        retryable=True)
    if text is None:  # e.g. a reasoning model that spent all its tokens thinking
        text = ""
    if not isinstance(text, str):
        return _Failure("malformed_response", "choices[0].message.content is not text",
                        retryable=True)
    finish_reason = "length" if choice.get("finish_reason") == "length" else "stop"
    return Completion(text=text, logprobs=_token_logprobs(choice), finish_reason=finish_reason, usage=_usage(body))


def _usage(body: dict[str, Any]) -> tuple[int, int] | None:
    """`usage.prompt_tokens` and `usage.completion_tokens`, or None when absent or malformed."""
    try:
        return int(body["usage"]["prompt_tokens"]), int(body["usage"]["completion_tokens"])
    except (KeyError, TypeError, ValueError):
        return None


def _token_logprobs(choice: dict[str, Any]) -> list[float]:
    """`choices[0].logprobs.content[*].logprob`, or [] when absent or malformed."""
    try:
        return [float(token["logprob"]) for token in choice["logprobs"]["content"]]
    except (KeyError, TypeError, ValueError):
        return []


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds (fractions accepted) or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _transport_reason(exc: BaseException) -> str:
    """A few words for why a connection failed, from the OS error under httpx's."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            return "unknown host"
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        seen = seen.__cause__ or seen.__context__
    if isinstance(exc, httpx.TimeoutException):
        return "no answer within the timeout"
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return type(exc).__name__
