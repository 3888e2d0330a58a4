import random

import pytest


@pytest.fixture(scope="session", autouse=True)
def _throwaway_cache(tmp_path_factory):
    """Solved policies and other caches go to a temporary folder, never the user's;
    the converted embedded model (~30 s to convert) is shared with the user's cache."""
    from sparring.paths import cache_dir

    models = cache_dir("models")  # the user's, resolved before the switch
    root = tmp_path_factory.mktemp("sparring-cache")
    (root / "models").symlink_to(models, target_is_directory=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPARRING_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="session")
def embedded_dir():
    """The converted embedded model (converted once per machine, then cached)."""
    from sparring.backends.embedded import embedded_model_dir

    return embedded_model_dir()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, embedded_dir):
    """A 2-layer Llama with random weights and the embedded model's tokenizer:
    real transformers code paths in milliseconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(embedded_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    path = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def rng():
    return random.Random(0)
