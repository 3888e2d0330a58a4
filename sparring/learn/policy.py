"""The trainable policy: a local model in an hf backend, with a LoRA adapter or
every weight trainable."""

from __future__ import annotations


import torch

from sparring.backends.hf import HFBackend, HFConfig
from sparring.backends.hf_compat import quiet_loading
from sparring.errors import SparringError


def load_backend(path: str, dtype: str, device: str, name: str) -> HFBackend:
    return HFBackend(HFConfig(path=path, dtype=dtype, device=device), name=name)


def lora_target_check(model, targets: tuple[str, ...]) -> None:
    """Refuse LoRA targets the model has no linear module for, naming those it has."""
    linear = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
    missing = [t for t in targets if t not in linear]
    if missing:
        raise SparringError(
            f"LoRA target module(s) {', '.join(missing)} not in this model: set lora_targets to some of {', '.join(linear)}"
        )


def add_lora(model, r: int, alpha: int, targets: tuple[str, ...]):
    """`model` with a fresh LoRA adapter (peft) on the `targets` linear modules."""
    from peft import LoraConfig, get_peft_model

    lora_target_check(model, targets)
    lora = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, target_modules=list(targets), task_type="CAUSAL_LM")
    with quiet_loading():  # peft reads the deprecated is_gradient_checkpointing while it wraps
        model = get_peft_model(model, lora)
    model.eval()  # no dropout anywhere: sampling and training see the same function
    return model
