"""The fast path (hf_fast.py) against the plain path (hf.py), its reference: the
same sampled ids and log-probs on the same seeds and requests, over calls in a row
that exercise every reuse of keys and values, and the same scores."""

import pytest

from sparring.backends.base import GenerationRequest, ScoreRequest
from sparring.backends.hf import HFBackend, HFConfig


def _seat(k: int):
    """Prompts of one game from two seats: a shared head, a long seat-specific part, a short own part."""
    seat = "red" if k % 2 else "blue"
    return (("system", "Rules of the game. " * 10), ("user", f"You hold the {seat} pieces. " * 10 + f"Turn {k}."))


def _board(k: int):
    return (("user", f"Board {k}: " + "x o . " * (5 + 4 * k)),)


def _game_requests(tokens: int) -> list[GenerationRequest]:
    """Shared and branching heads; greedy, temperature and top-p rows; rows that finish at different steps."""
    return [GenerationRequest(_seat(k), max_new_tokens=tokens - k % 3, seed=k,
                              temperature=(1.0, 0.7, 0.0)[k % 3], top_p=(1.0, 0.9)[k % 2]) for k in range(6)]


def _retries(boards, answers) -> list[GenerationRequest]:
    """Retries: each prompt, its rejected answer as the model's turn, a correction."""
    return [GenerationRequest(board + (("assistant", answer.text), ("user", "Rejected. Try again.")),
                              max_new_tokens=6, seed=k) for k, (board, answer) in enumerate(zip(boards, answers))]


def _assert_same(fast, plain) -> None:
    for a, b in zip(fast, plain, strict=True):
        assert a.prompt_token_ids == b.prompt_token_ids
        assert a.token_ids == b.token_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
        assert a.finish_reason == b.finish_reason


def _calls_in_a_row(fast: HFBackend, plain: HFBackend, tokens: int) -> None:
    """The same calls on both backends, each compared; later calls reuse keys and values of earlier ones."""
    def both(requests):
        answers = fast.generate(requests), plain.generate(requests)
        _assert_same(*answers)
        return answers[1]

    both(_game_requests(tokens))
    boards = [_board(k) for k in range(3)]
    answers = both([GenerationRequest(board, max_new_tokens=2 + 2 * k, seed=k) for k, board in enumerate(boards)])
    both([GenerationRequest((("system", "Another game."), ("user", "Go.")), max_new_tokens=6, seed=7)] + _retries(boards, answers))
    both([GenerationRequest((("user", "word " * n),), max_new_tokens=tokens, seed=n) for n in (1, 40, 2, 80)])
    both(_game_requests(tokens)[::-1] + [GenerationRequest(_seat(9), max_new_tokens=0)])


@pytest.fixture(scope="module", params=[32, 2], ids=["one-batch", "batches-of-2"])
def backends(request, tiny_model_dir):
    """(fast, plain) on one tiny float32 model."""
    return tuple(HFBackend(HFConfig(path=str(tiny_model_dir), dtype="float32", max_batch=request.param, fast=fast))
                 for fast in (True, False))


def test_the_fast_path_samples_what_the_plain_path_samples(backends):
    fast, plain = backends
    _calls_in_a_row(fast, plain, tokens=8)
    assert fast._fast.tokens_reused > 0  # the fast path did reuse keys and values
    assert plain._fast is None


def test_rows_that_hit_a_stop_id_stop_alike(backends, monkeypatch):
    fast, plain = backends
    requests = [GenerationRequest(_board(k), max_new_tokens=8, seed=k) for k in range(3)]
    stop = plain.generate(requests)[0].token_ids[2]  # row 0's third token ends it now
    for backend in backends:
        monkeypatch.setattr(backend, "stop_ids", backend.stop_ids | {stop})
    answers = fast.generate(requests)
    _assert_same(answers, plain.generate(requests))
    assert answers[0].finish_reason == "stop" and len(answers[0].token_ids) <= 3


def test_the_fast_path_scores_what_the_plain_path_scores(backends):
    fast, plain = backends
    requests = [ScoreRequest(_seat(k), ("Answer: pass", "Answer: bet", "x", "")) for k in range(5)]
    requests += [ScoreRequest(_board(1), ("a much longer option than the others, " * 3,)), ScoreRequest(_board(0), ())]
    for _ in range(2):  # the second time from cached heads
        for options_fast, options_plain in zip(fast.score(requests), plain.score(requests), strict=True):
            for a, b in zip(options_fast, options_plain, strict=True):
                assert (a.prompt_token_ids, a.token_ids) == (b.prompt_token_ids, b.token_ids)
                assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert any(len(head) > len(fast._fast._prefix_ids) for head in fast._fast._head_caches)  # branch heads were used


@pytest.mark.slow
def test_with_the_embedded_model_the_fast_path_samples_what_the_plain_path_samples(embedded_dir):
    fast, plain = (HFBackend(HFConfig(path=str(embedded_dir), dtype="float32", fast=fast)) for fast in (True, False))
    _assert_same(fast.generate(_game_requests(4)[:4]), plain.generate(_game_requests(4)[:4]))
    boards = [_board(k) for k in range(2)]
    firsts = [GenerationRequest(board, max_new_tokens=3, seed=k) for k, board in enumerate(boards)]
    answers = plain.generate(firsts)
    _assert_same(fast.generate(firsts), answers)
    _assert_same(fast.generate(_retries(boards, answers)), plain.generate(_retries(boards, answers)))
    assert fast._fast.tokens_reused > 0
