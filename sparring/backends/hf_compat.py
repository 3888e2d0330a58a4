"""What differs between the transformers versions sparring runs on (5.16 to 5.19,
which another backend pins, and the newer one installed beside it), and the
library chatter a user of sparring has no use for.

- The key/value cache argument of `forward` (and its field in the output) is
  `past_key_values` up to 5.19 and `cache` after, where the old name still works but
  warns on every call. `cache_keyword` reads which one a model's forward takes.
- Loading a model draws a "Loading weights" progress bar per model, and peft reads
  `is_gradient_checkpointing`, deprecated in newer transformers, when it wraps one.
  Neither is about the user's run: `quiet_loading` hides both while loading.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def cache_keyword(model) -> str:
    """The name `model`'s forward takes the key/value cache under, and returns it
    under in its output: "cache" or "past_key_values". A peft model passes the
    argument on to the model it wraps, so that model's forward decides."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _cache_keyword(type(base))


@functools.cache
def _cache_keyword(model_class: type) -> str:
    return "cache" if "cache" in inspect.signature(model_class.forward).parameters else "past_key_values"


def with_cache(model, cache) -> dict[str, Any]:
    """The keyword argument that hands `cache` to `model`'s forward."""
    return {cache_keyword(model): cache}


def cache_of(model, output):
    """The key/value cache in an output of `model`'s forward."""
    return getattr(output, cache_keyword(model))


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Load or wrap models inside this: no progress bars from transformers or the
    hub, and no warning about `is_gradient_checkpointing` (peft's use of an API
    transformers deprecated, nothing the user can change). Every other warning, such
    as weights missing from a checkpoint, still reaches the user."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing", category=FutureWarning)
            yield
    finally:
        if bars:
            hf_logging.enable_progress_bar()
