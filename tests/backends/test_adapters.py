"""LoRA adapters attached to one loaded base model (peft's multiple adapters): each,
switched to between calls, scores and samples as that adapter loaded alone (merged
into its own copy of the base model), on the fast path and the plain one, and the
base model alone plays as the base model; a switch back and forth keeps each
adapter's cached keys and values apart."""

import pytest
import torch

from sparring.backends.base import GenerationRequest, ScoreRequest
from sparring.backends.hf import AdapterView, HFBackend, HFConfig
from sparring.backends.hf_compat import quiet_loading
from sparring.errors import SparringError

MESSAGES = [(("system", "You play Kuhn poker."), ("user", f"Your card: {card}. Pass or bet?")) for card in "JQK"]


def make_adapter(base_dir, out, seed: int):
    """A LoRA adapter with random weights (peft starts B at 0, which changes nothing)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    with quiet_loading():
        model = AutoModelForCausalLM.from_pretrained(base_dir)
        peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                      init_lora_weights=False))
    peft_model.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {name: make_adapter(tiny_model_dir, root / name, seed) for name, seed in (("a", 1), ("b", 2))}


def scores(backend) -> list[float]:
    """Each message's two answers' log-likelihoods, in a row."""
    requests = [ScoreRequest(messages=m, options=("pass", "bet")) for m in MESSAGES]
    return [option.total for options in backend.score(requests) for option in options]


def samples(backend) -> list[list[int]]:
    requests = [GenerationRequest(messages=m, max_new_tokens=6, temperature=1.0, seed=7 + i) for i, m in enumerate(MESSAGES)]
    return [c.token_ids for c in backend.generate(requests)]


@pytest.mark.parametrize("fast", [True, False])
def test_each_attached_adapter_plays_as_it_would_alone(tiny_model_dir, adapters, fast):
    config = {"dtype": "float32", "fast": fast}
    alone = {name: HFBackend(HFConfig(path=str(path), **config)) for name, path in adapters.items()}
    alone[None] = HFBackend(HFConfig(path=str(tiny_model_dir), **config))
    shared = HFBackend(HFConfig(path=str(tiny_model_dir), **config))
    for name, path in adapters.items():
        shared.add_adapter(name, path)
    views = {name: AdapterView(shared, name) for name in alone}
    apart = [scores(alone[x])[i] - scores(alone[y])[i] for x, y in (("a", "b"), ("a", None)) for i in range(6)]
    assert max(map(abs, apart)) > 1e-2  # the adapters do change the model, by far more than the tolerance
    for name in ["a", "b", None, "a", "b", None]:  # back and forth: each keeps its own cached heads
        assert scores(views[name]) == pytest.approx(scores(alone[name]), abs=1e-4)
        assert samples(views[name]) == samples(alone[name])
        assert views[name].backend.weights_version == (name or "base")  # answers name who gave them


def test_what_cannot_be_attached_is_refused(tiny_model_dir, adapters):
    shared = HFBackend(HFConfig(path=str(tiny_model_dir), dtype="float32"))
    with pytest.raises(SparringError, match="not a LoRA adapter"):
        shared.add_adapter("full", tiny_model_dir)
    shared.add_adapter("a", adapters["a"])
    with pytest.raises(SparringError, match="already attached"):
        shared.add_adapter("a", adapters["b"])
    with pytest.raises(SparringError, match="no adapter named 'c'"):
        shared.use_adapter("c")
