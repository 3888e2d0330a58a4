import math
import os
import subprocess
import sys

import pytest
import torch

from sparring.backends.base import GenerationRequest, ScoreRequest
from sparring.backends.hf import HFBackend, HFConfig
from sparring.backends.hf_fast import _common_length, _decode_attention, _RoomyLayer, length_groups
from sparring.backends.threads import use_threads
from sparring.errors import SparringError

MESSAGES = (("user", "Pick a number."),)


def _cold(backend: HFBackend) -> None:
    """Make the backend forget its cached keys and values, as new weights would."""
    backend.weights_version += "+"


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return HFBackend(HFConfig(path=str(tiny_model_dir), dtype="float32"))


def test_same_seed_same_sample_whatever_the_batch(backend):
    alone = backend.generate([GenerationRequest(MESSAGES, max_new_tokens=8, seed=42)])[0]
    batch = backend.generate([GenerationRequest(MESSAGES[:0] + (("user", "x" * k),), max_new_tokens=8, seed=k) for k in (1, 2)]
                             + [GenerationRequest(MESSAGES, max_new_tokens=8, seed=42)])
    assert alone.token_ids == batch[2].token_ids
    assert len(alone.token_ids) == len(alone.logprobs) <= 8


def test_logprobs_are_the_models_own(backend):
    """Recorded behaviour log-probs equal a fresh forward pass over prompt + sample."""
    completion = backend.generate([GenerationRequest(MESSAGES, max_new_tokens=6, seed=3)])[0]
    ids = torch.tensor([completion.prompt_token_ids + completion.token_ids])
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(ids).logits[0, :-1].float(), -1)
    n_prompt = len(completion.prompt_token_ids)
    expected = [float(logp[n_prompt - 1 + i, t]) for i, t in enumerate(completion.token_ids)]
    assert completion.logprobs == pytest.approx(expected, abs=1e-4)


def test_greedy_is_argmax_and_deterministic(backend):
    a, b = backend.generate([GenerationRequest(MESSAGES, max_new_tokens=5, temperature=0, seed=s) for s in (1, 2)])
    assert a.token_ids == b.token_ids


def test_score_matches_generation_logprobs(backend):
    """The score of an option is the sum of its token log-probs after the prompt."""
    completion = backend.generate([GenerationRequest(MESSAGES, max_new_tokens=4, seed=9)])[0]
    option = backend.tokenizer.decode(completion.token_ids)
    if backend.tokenizer(option, add_special_tokens=False)["input_ids"] != completion.token_ids:
        pytest.skip("sampled tokens do not re-tokenise identically")
    [[score, other]] = [[o.total for o in options] for options in backend.score([ScoreRequest(MESSAGES, (option, "zzz"))])]
    assert score == pytest.approx(sum(completion.logprobs), abs=1e-3)
    assert math.isfinite(other)


def test_missing_model_dir_is_a_clear_error(tmp_path):
    with pytest.raises(SparringError, match="no model at"):
        HFBackend(HFConfig(path=str(tmp_path)))


def test_shared_prompt_head_is_cached_and_changes_nothing(backend):
    """Prompts sharing a long head give the same samples as without the cache."""
    head = (("system", "You play games. " * 20),)
    requests = [GenerationRequest(head + (("user", f"Pick {k}."),), max_new_tokens=6, seed=k) for k in range(3)]
    _cold(backend)
    cached = backend.generate(requests)
    assert len(backend._fast._prefix_ids) >= 16
    cold = []
    for request in requests:  # one at a time, the cache cleared before each
        _cold(backend)
        cold += backend.generate([request])
    assert [c.token_ids for c in cached] == [c.token_ids for c in cold]
    for warm, fresh in zip(cached, cold):
        assert warm.logprobs == pytest.approx(fresh.logprobs, abs=1e-4)


def test_a_new_weights_version_drops_the_cache_and_stamps_the_answers(tiny_model_dir):
    backend = HFBackend(HFConfig(path=str(tiny_model_dir), dtype="float32"))
    assert backend.weights_version == "base"
    request = GenerationRequest((("system", "Rules. " * 30), ("user", "Go.")), max_new_tokens=3, temperature=0)
    backend.generate([request, request])
    kept = dict(backend._fast._head_caches)
    backend.generate([request])
    assert kept and all(backend._fast._head_caches[h] is prefix for h, prefix in kept.items())  # same version: kept
    with torch.no_grad():
        for p in backend.model.parameters():
            p.add_(0.5 * torch.randn_like(p))
    backend.weights_version = "step-1"
    after = backend.generate([request])[0]
    assert not any(backend._fast._head_caches.get(h) is prefix for h, prefix in kept.items())
    assert after.weights_version == "step-1"
    ids = torch.tensor([after.prompt_token_ids + after.token_ids])
    with torch.no_grad():
        logp = torch.log_softmax(backend.model(ids).logits[0, :-1].float(), -1)
    n = len(after.prompt_token_ids)
    assert after.logprobs == pytest.approx([float(logp[n - 1 + i, t]) for i, t in enumerate(after.token_ids)], abs=1e-4)
    [[scored]] = backend.score([ScoreRequest(MESSAGES, ("x",))])
    assert scored.weights_version == "step-1"


def test_a_training_checkpoint_is_its_own_weights_version(tiny_model_dir, tmp_path):
    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / "step-12").mkdir(parents=True)
    (checkpoints / "step-12" / "policy").symlink_to(tiny_model_dir, target_is_directory=True)
    (checkpoints / "latest").write_text("step-12")
    assert HFBackend(HFConfig(path=str(checkpoints / "latest"), dtype="float32")).weights_version == "step-12"


def test_importing_and_building_leave_the_process_alone(tiny_model_dir):
    """No attention registered at import, no thread count set by a backend; the fast
    path's decoding attention is registered when a fast CPU backend is first built."""
    check = ("import sparring.backends.hf; from transformers import AttentionInterface; "
             "assert 'sparring_decode' not in AttentionInterface()")
    subprocess.run([sys.executable, "-c", check], check=True)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)  # neither the default nor the cores free
        plain = HFBackend(HFConfig(path=str(tiny_model_dir), dtype="float32", fast=False))
        fast = HFBackend(HFConfig(path=str(tiny_model_dir), dtype="float32"))
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
    assert plain.model.config._attn_implementation == "sdpa"
    assert fast.model.config._attn_implementation == "sparring_decode"


def test_use_threads_sets_torchs_thread_count():
    before = torch.get_num_threads()
    try:
        assert use_threads(1) == 1 and torch.get_num_threads() == 1
        free = use_threads(0)
        assert 1 <= free <= (os.cpu_count() or 1) and torch.get_num_threads() == free
        with pytest.raises(SparringError, match="threads=-1"):
            use_threads(-1)
    finally:
        torch.set_num_threads(before)


def test_scores_with_the_cached_head_equal_a_plain_forward_pass(backend):
    head = (("system", "Rules of the game. " * 15),)
    requests = [ScoreRequest(head + (("user", f"State {k}."),), ("Answer: pass", "Answer: bet", "x")) for k in range(3)]
    _cold(backend)
    cached = [[o.total for o in options] for options in backend.score(requests)]
    assert len(backend._fast._prefix_ids) >= 16
    for request, scores in zip(requests, cached):
        prompt = backend.prompt_ids(request.messages)
        for option, score in zip(request.options, scores):
            ids = prompt + backend.tokenizer(option, add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(backend.model(torch.tensor([ids])).logits[0, :-1].float(), -1)
            expected = sum(float(logp[t - 1, ids[t]]) for t in range(len(prompt), len(ids)))
            assert score == pytest.approx(expected, abs=1e-3)


def test_length_groups_trade_padding_against_passes():
    """Rows 10, 100, 11, 101 tokens long: two groups cost 64 + 2*11 + 64 + 2*101 = 352
    padded tokens, one group 64 + 4*101 = 468; a dearer pass makes one group best."""
    assert length_groups([10, 100, 11, 101], overhead=64) == [[0, 2], [1, 3]]
    assert length_groups([10, 100, 11, 101], overhead=1000) == [[0, 2, 1, 3]]
    assert length_groups([10, 100, 11, 101], overhead=1000, most=2) == [[0, 2], [1, 3]]
    assert length_groups([]) == []


def test_roomy_cache_layer_writes_in_place_and_keeps_what_is_below():
    keys, values = torch.zeros(2, 1, 6, 4), torch.zeros(2, 1, 6, 4)
    first = torch.randn(2, 1, 2, 4)
    keys[:, :, :2], values[:, :, :2] = first, -first
    layer = _RoomyLayer(keys, values, length=2)
    more = torch.randn(2, 1, 3, 4)
    got_keys, got_values = layer.update(more, -more)
    assert got_keys is keys and got_values is values  # no copy: attention reads the buffers
    assert torch.equal(keys[:, :, :5], torch.cat([first, more], dim=2))
    assert torch.equal(values[:, :, :5], -torch.cat([first, more], dim=2))
    assert layer.get_seq_length() == 5
    layer.batch_select_indices(torch.tensor([1]))
    assert torch.equal(layer.keys[:, :, :5], torch.cat([first, more], dim=2)[1:])
    with pytest.raises(RuntimeError):  # no room for two more
        layer.update(more[1:, :, :2], more[1:, :, :2])


def test_rows_of_very_different_lengths_sample_as_they_would_alone(backend):
    """Rows prefilled in different length groups and decoded together match one-at-a-time runs."""
    requests = [GenerationRequest((("user", "word " * n),), max_new_tokens=6, seed=n) for n in (1, 40, 2, 80)]
    together = backend.generate(requests)
    for request, batched in zip(requests, together):
        alone = backend.generate([request])[0]
        assert batched.token_ids == alone.token_ids
        assert batched.logprobs == pytest.approx(alone.logprobs, abs=1e-4)


def _two_seat_messages(k: int):
    """Prompts of one game from two seats: a shared head, a long seat-specific part, a short own part."""
    seat = "red" if k % 2 else "blue"
    return (("system", "Rules of the game. " * 10), ("user", f"You hold the {seat} pieces. " * 10 + f"Turn {k}."))


def test_rows_that_branch_share_a_longer_head_and_change_nothing(backend):
    requests = [GenerationRequest(_two_seat_messages(k), max_new_tokens=6, seed=k) for k in range(6)]
    _cold(backend)
    batched = backend.generate(requests)
    assert any(len(head) > len(backend._fast._prefix_ids) for head in backend._fast._head_caches)  # each seat's part was run once, not once per row
    for request, together in zip(requests, batched):
        _cold(backend)
        alone = backend.generate([request])[0]
        assert together.token_ids == alone.token_ids
        assert together.logprobs == pytest.approx(alone.logprobs, abs=1e-4)


def test_scores_under_branch_heads_equal_a_plain_forward_pass(backend):
    requests = [ScoreRequest(_two_seat_messages(k), ("Answer: pass", "Answer: bet")) for k in range(6)]
    _cold(backend)
    scores = backend.score(requests)
    assert any(len(head) > len(backend._fast._prefix_ids) for head in backend._fast._head_caches)
    for request, options in zip(requests, scores):
        prompt = backend.prompt_ids(request.messages)
        for option in options:
            ids = prompt + option.token_ids
            with torch.no_grad():
                logp = torch.log_softmax(backend.model(torch.tensor([ids])).logits[0, :-1].float(), -1)
            expected = sum(float(logp[t - 1, ids[t]]) for t in range(len(prompt), len(ids)))
            assert option.total == pytest.approx(expected, abs=1e-3)


def test_a_retry_reuses_the_keys_of_the_rejected_prompt_and_answer_and_changes_nothing(tiny_model_dir):
    """A retry is the rejected prompt, the answer as the model's turn, and a
    correction: the keys and values of prompt and answer come from the last call
    (rows of two batches of it, which left their batch at different steps), and
    the samples equal cold runs."""
    backend = HFBackend(HFConfig(path=str(tiny_model_dir), dtype="float32", max_batch=2))
    boards = [(("user", f"Board {k}: " + "x o . " * (5 + 4 * k)),) for k in range(3)]
    first = backend.generate([GenerationRequest(board, max_new_tokens=2 + 2 * k, seed=k) for k, board in enumerate(boards)])
    retries = [GenerationRequest(board + (("assistant", answer.text), ("user", "Rejected. Try again.")), max_new_tokens=6, seed=k)
               for k, (board, answer) in enumerate(zip(boards, first))]
    unrelated = GenerationRequest((("system", "Another game."), ("user", "Go.")), max_new_tokens=6, seed=7)
    reused_before = backend._fast.tokens_reused
    warm = backend.generate([unrelated] + retries)
    # What the last call ran: each prompt and its answer but the answer's last token.
    ran = [answer.prompt_token_ids + answer.token_ids[:-1] for answer in first]
    common = [_common_length(run, backend.prompt_ids(retry.messages)) for run, retry in zip(ran, retries)]
    assert min(c - len(answer.prompt_token_ids) for c, answer in zip(common, first)) >= 1  # into the answers
    assert backend._fast.tokens_reused - reused_before >= sum(common)
    for request, together in zip([unrelated] + retries, warm):
        _cold(backend)
        alone = backend.generate([request])[0]
        assert together.token_ids == alone.token_ids
        assert together.logprobs == pytest.approx(alone.logprobs, abs=1e-4)


def test_decode_attention_equals_torch_attention_with_the_key_value_heads_repeated():
    torch.manual_seed(0)
    query, key, value = torch.randn(3, 6, 1, 8), torch.randn(3, 2, 10, 8), torch.randn(3, 2, 10, 8)
    mask = torch.zeros(3, 1, 1, 10)
    mask[0, :, :, :4] = torch.finfo(torch.float32).min  # a left-padded row
    module = torch.nn.Module()
    module.num_key_value_groups, module.is_causal = 3, True
    ours, _ = _decode_attention(module, query, key, value, mask, scaling=0.3)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, key.repeat_interleave(3, dim=1), value.repeat_interleave(3, dim=1), attn_mask=mask, scale=0.3)
    assert torch.allclose(ours, expected.transpose(1, 2), atol=1e-5)  # [B, 1, heads, dim], as sdpa's path returns
