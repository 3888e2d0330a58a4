"""OpenAIBackend against a real HTTP server on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import dataclasses
import logging
import random
import socket
import time

import pytest

from fake_openai_server import (
    echo,
    fake_logprobs,
    malformed_json,
    missing_fields,
    ok,
    running_fake_server,
    slow,
    status,
)
from sparring.backends.base import Backend, GenerationRequest, ScoreRequest
from sparring.backends.openai_api import OpenAIBackend, OpenAIConfig
from sparring.errors import SparringError

KEY_ENV = "SPARRING_TEST_OPENAI_KEY"
KEY = "sk-test-9f8e7d6c5b4a-DO-NOT-LEAK"


@pytest.fixture
def server():
    with running_fake_server() as s:
        yield s


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def config(server, **overrides) -> OpenAIConfig:
    fields = dict(base_url=server.base_url, model="fake-model", api_key_env=KEY_ENV,
                  timeout_s=2.0, max_retries=3, backoff_s=0.01, max_backoff_s=0.5,
                  concurrency=4)
    fields.update(overrides)
    return OpenAIConfig(**fields)


@pytest.fixture
def make_backend(server, key):
    made = []

    def make(**overrides) -> OpenAIBackend:
        backend = OpenAIBackend(config(server, **overrides))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def request(prompt: str = "Your move.", **kw) -> GenerationRequest:
    return GenerationRequest(messages=(("system", "You play tic-tac-toe."), ("user", prompt)), **kw)


def test_normal_batch_keeps_order_and_sends_the_protocol(server, make_backend):
    server.always(echo())
    backend = make_backend()
    assert isinstance(backend, Backend)
    prompts = [f"prompt {i}" for i in range(6)]
    reqs = [request(p, max_new_tokens=32, temperature=0.7, top_p=0.9, seed=i)
            for i, p in enumerate(prompts)]

    out = backend.generate(reqs)

    assert [c.text for c in out] == [f"echo: {p}" for p in prompts]
    assert all(c.finish_reason == "stop" and c.error is None for c in out)
    assert out[0].logprobs == fake_logprobs("echo: prompt 0") == [-0.25, -0.5, -0.75]
    assert all(c.token_ids == [] for c in out)  # the protocol has no token ids
    assert out[0].usage == (5, 3)  # the server's count: 3 + 2 words of prompt, 3 tokens of "echo: prompt 0"
    sent = {r.body["seed"]: r for r in server.chat_requests()}
    body = sent[3].body
    assert body == {
        "model": "fake-model",
        "messages": [{"role": "system", "content": "You play tic-tac-toe."},
                     {"role": "user", "content": "prompt 3"}],
        "max_tokens": 32, "temperature": 0.7, "top_p": 0.9, "seed": 3, "logprobs": True,
    }
    assert sent[3].headers["Authorization"] == f"Bearer {KEY}"
    assert backend.stats.as_dict() == {"requests": 6, "attempts": 6, "retries": 0,
                                       "failures": 0, "errors": {}}


def test_logprobs_off_and_length_finish(server, make_backend):
    server.queue(ok("Answer: 5 and", finish_reason="length"))
    [c] = make_backend(logprobs=False).generate([request()])
    assert (c.text, c.finish_reason, c.logprobs) == ("Answer: 5 and", "length", [])
    assert "logprobs" not in server.chat_requests()[0].body


def test_429_is_retried_honouring_retry_after(server, make_backend):
    server.queue(status(429, retry_after="0.3"), ok("Answer: 7"))
    backend = make_backend(concurrency=1)
    start = time.monotonic()
    [c] = backend.generate([request()])
    assert time.monotonic() - start >= 0.3  # waited what the server asked, not backoff_s
    assert c.text == "Answer: 7" and c.error is None
    stats = backend.stats
    assert (stats.retries, stats.failures, stats.errors) == (1, 0, {"http_429": 1})


def test_retry_after_is_capped(server, make_backend):
    server.queue(status(429, retry_after="60"), ok())
    start = time.monotonic()
    [c] = make_backend(max_backoff_s=0.2).generate([request()])
    assert c.error is None and 0.2 <= time.monotonic() - start < 2


def test_500_twice_then_success(server, make_backend):
    server.queue(status(500), status(503), ok("Answer: 2"))
    backend = make_backend(concurrency=1)
    [c] = backend.generate([request()])
    assert c.text == "Answer: 2"
    assert len(server.chat_requests()) == 3
    assert backend.stats.retries == 2
    assert backend.stats.errors == {"http_500": 1, "http_503": 1}


def test_malformed_json_and_missing_fields_are_retried(server, make_backend):
    server.queue(malformed_json(), missing_fields(), ok("Answer: 1"))
    backend = make_backend(concurrency=1)
    [c] = backend.generate([request()])
    assert c.text == "Answer: 1"
    assert backend.stats.errors == {"malformed_json": 1, "malformed_response": 1}
    assert backend.stats.retries == 2


def test_slow_reply_times_out_then_succeeds(server, make_backend):
    server.queue(slow(2.0, "too late"), ok("Answer: 4"))
    backend = make_backend(timeout_s=0.3, concurrency=1)
    start = time.monotonic()
    [c] = backend.generate([request()])
    assert c.text == "Answer: 4"
    assert time.monotonic() - start < 1.5  # did not wait for the slow reply
    assert backend.stats.errors == {"ReadTimeout": 1}


def test_always_500_gives_an_error_completion_and_spares_the_batch(server, make_backend):
    server.always(status(500), prompt="doomed")
    server.always(echo())
    backend = make_backend(max_retries=2)
    out = backend.generate([request("a"), request("doomed"), request("b")])

    assert [c.text for c in (out[0], out[2])] == ["echo: a", "echo: b"]
    bad = out[1]
    assert (bad.text, bad.finish_reason) == ("", "error")
    assert bad.error == "HTTP 500 (gave up after 3 attempts)"
    assert len(server.chat_requests("doomed")) == 3  # 1 try + max_retries, no more
    stats = backend.stats
    assert (stats.requests, stats.retries, stats.failures) == (3, 2, 1)
    assert stats.errors == {"http_500": 3}


def test_client_errors_are_not_retried(server, make_backend):
    server.queue(status(400, message="max_tokens is too large"))
    backend = make_backend(concurrency=1)
    [c] = backend.generate([request()])
    assert c.finish_reason == "error"
    assert c.error == "HTTP 400: max_tokens is too large"
    assert backend.stats.retries == 0 and len(server.chat_requests()) == 1


def test_concurrency_limit_is_respected(server, make_backend):
    server.always(ok(delay_s=0.1))
    out = make_backend(concurrency=3).generate([request(f"p{i}") for i in range(10)])
    assert all(c.error is None for c in out)
    assert server.max_in_flight == 3  # reached, never exceeded


def test_missing_key_is_refused_at_construction(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(SparringError) as err:
        OpenAIBackend(config(server, api_key_env="OPENAI_API_KEY"))
    assert str(err.value) == (
        "environment variable OPENAI_API_KEY is not set: export it, "
        "or set api_key_env='' for a server that needs no key"
    )
    assert server.requests == []  # refused before touching the network


def test_no_key_needed_sends_no_authorization(server):
    with OpenAIBackend(config(server, api_key_env="")) as backend:
        [c] = backend.generate([request()])
    assert c.text == "Answer: 5"
    assert "authorization" not in {h.lower() for h in server.chat_requests()[0].headers}


def test_unreachable_server_is_one_clear_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(SparringError) as err:
        OpenAIBackend(OpenAIConfig(base_url=url, model="m", api_key_env=""))
    assert str(err.value) == (
        f"cannot reach {url}: connection refused. Is the server running? Check base_url"
    )
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no chained traceback


def test_missing_models_route_is_fine():
    with running_fake_server(models_status=404) as server:
        with OpenAIBackend(config(server, api_key_env="")) as backend:
            assert backend.generate([request()])[0].text == "Answer: 5"


def test_a_base_url_that_answers_404_everywhere_fails_the_start_up_check():
    with running_fake_server(models_status=404, chat_route=False) as server:
        with pytest.raises(SparringError, match="answers 404 .* Check base_url"):
            OpenAIBackend(config(server, api_key_env=""))
        assert server.requests[-1].method == "POST"  # /models 404 alone is not enough to refuse


def test_key_never_leaks(server, make_backend, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    server.always(status(500), prompt="doomed")
    backend = make_backend(max_retries=1)
    out = backend.generate([request("fine"), request("doomed")])

    assert server.chat_requests()[0].headers["Authorization"] == f"Bearer {KEY}"
    assert out[1].error and caplog.text  # the failure path ran and logged
    cfg = backend.config
    texts = [repr(backend), str(backend), repr(cfg), str(cfg), str(dataclasses.asdict(cfg)),
             repr(vars(backend)), str(backend.stats), caplog.text, *(repr(c) for c in out)]
    for text in texts:
        assert KEY not in text
    with pytest.raises(SparringError) as err:
        OpenAIConfig(base_url=server.base_url, model="m", api_key_env=KEY)  # key pasted by mistake
    assert KEY not in str(err.value)


def test_score_is_refused_with_a_pointer_to_free_text(make_backend):
    with pytest.raises(SparringError, match="free-text mode"):
        make_backend().score([ScoreRequest(messages=(("user", "x"),), options=("a", "b"))])


@pytest.mark.parametrize("field, value, words", [
    ("concurrency", 0, "concurrency must be >= 1"),
    ("max_retries", -1, "max_retries must be between 0 and"),
    ("max_retries", 1000, "max_retries must be between 0 and"),
    ("timeout_s", 0, "timeout_s must be > 0"),
    ("backoff_s", -1, "backoff_s must be >= 0"),
    ("base_url", "127.0.0.1:8000/v1", "write it like http://"),
    ("model", " ", "model is empty"),
    ("concurrency", "four", "concurrency must be a whole number, got str 'four'"),
    ("timeout_s", True, "timeout_s must be a number"),
    ("logprobs", "yes", "logprobs must be true or false"),
])
def test_bad_config_says_what_to_change(server, field, value, words):
    with pytest.raises(SparringError, match=words):
        config(server, **{field: value})


def test_defaults_point_at_openai():
    cfg = OpenAIConfig(model="gpt-4o-mini")
    assert (cfg.base_url, cfg.api_key_env, cfg.logprobs) == (
        "https://api.openai.com/v1", "OPENAI_API_KEY", True)


def test_closed_backend_refuses_to_generate(make_backend):
    backend = make_backend()
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(SparringError, match="closed"):
        backend.generate([request()])


def test_a_turn_records_its_calls_measured_time_and_batch_size(server, make_backend):
    # Four requests answered side by side, each after 0.3 s: every decision's record
    # holds the call's whole time (not a quarter of it) and how many shared the call.
    from sparring.agents.base import Decision
    from sparring.agents.llm import LLMAgent
    from sparring.games.registry import make_game

    server.always(ok("Answer: 5", delay_s=0.3))
    agent = LLMAgent(make_backend(concurrency=4))
    state = make_game("tictactoe").new_initial_state(random.Random(0))
    decisions = [Decision(state=state, player=0, rng=None, seed=i) for i in range(4)]
    start = time.perf_counter()
    choices = agent.act(decisions)
    elapsed = time.perf_counter() - start
    assert all(c.action is not None and c.batch_size == 4 for c in choices)
    assert all(0.3 <= c.batch_s <= elapsed for c in choices)
