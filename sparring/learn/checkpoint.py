"""Checkpoints of a training run: RUN_DIR/checkpoints/step-N holds the policy
(a LoRA adapter, or the whole model and its tokenizer) and state.pt (optimizer,
baselines, opponent pool, generator state, counters); RUN_DIR/checkpoints/latest
names the newest.

A checkpoint is written atomically: into a temporary directory renamed into place,
then the `latest` pointer replaced, so a run killed at any moment resumes from the
last complete checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from sparring.agents.registry import AGENT_OPTIONS_FILE
from sparring.backends.hf_compat import quiet_loading
from sparring.errors import SparringError

CHECKPOINTS = "checkpoints"
POLICY_DIR = "policy"
STATE_FILE = "state.pt"


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / CHECKPOINTS / "latest"
    if not pointer.exists():
        return None
    path = run_dir / CHECKPOINTS / pointer.read_text().strip()
    return path if (path / STATE_FILE).exists() else None


def save_checkpoint(run_dir: Path, step: int, model, tokenizer, state: dict[str, Any], keep: set[str],
                    agent_options: dict[str, Any]) -> Path:
    """Write checkpoints/step-N atomically and point `latest` at it; then drop every
    other checkpoint whose name is not in `keep`. `tokenizer` is saved beside the
    model when given (a full model; an adapter names its base model instead);
    `agent_options` (the LLM agent's mode, temperature, dtype, ...) beside it, so the
    checkpoint plays as it was trained."""
    root = run_dir / CHECKPOINTS
    name = checkpoint_name(step)
    tmp = root / f".tmp-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with quiet_loading():  # no "Writing model shards" bar
        model.save_pretrained(tmp / POLICY_DIR)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp / POLICY_DIR)
    _write_agent_options(tmp / POLICY_DIR, model, agent_options)
    torch.save(state, tmp / STATE_FILE)
    final = root / name
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    pointer = root / ".latest.tmp"
    pointer.write_text(name)
    os.replace(pointer, root / "latest")
    for old in root.glob("step-*"):
        if old.name not in keep | {name}:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(checkpoint: Path, model, lora: bool, dtype: str, device: str) -> dict[str, Any]:
    """Load the checkpoint's weights into `model` (in place) and return its state."""
    if lora:
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(checkpoint / POLICY_DIR / "adapter_model.safetensors"))
    else:
        from transformers import AutoModelForCausalLM

        saved = AutoModelForCausalLM.from_pretrained(checkpoint / POLICY_DIR, dtype=getattr(torch, dtype))
        model.load_state_dict(saved.state_dict())
    return torch.load(checkpoint / STATE_FILE, weights_only=False, map_location=device)


def write_policy(folder: Path, model, agent_options: dict[str, Any]) -> None:
    """Save a trained adapter and the agent options it plays by as FOLDER (an agent:
    `--players FOLDER`), atomically: a temporary folder renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with quiet_loading():  # no "Writing model shards" bar
        model.save_pretrained(tmp)
    _write_agent_options(tmp, model, agent_options)
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)


def _write_agent_options(folder: Path, model, agent_options: dict[str, Any]) -> None:
    """agent.json: the options the model plays by, with the dtype it was trained in
    (the backend's default, bfloat16, would play other numbers than were measured)."""
    dtype = str(model.dtype).removeprefix("torch.")
    (folder / AGENT_OPTIONS_FILE).write_text(json.dumps({**agent_options, "dtype": dtype}))


def loaded_policy(game, folder: Path):
    """The exact policy of the agent saved in FOLDER as users load it (`--players
    FOLDER`: the adapter merged into the base weights, in the dtype its agent.json
    names), not as it was trained."""
    from sparring.agents.registry import AgentFactory
    from sparring.eval.exploitability import agent_policy

    factory = AgentFactory(game)
    try:
        return agent_policy(game, factory.make(str(folder)), mode="exact")
    finally:
        factory.close()


def check_stored_settings(stored: dict | None, settings: dict, run_dir: Path, resuming: bool, kind: str,
                          occupied: bool = False) -> None:
    """Compare a run's stored settings with those it is started with: refuse to
    resume a directory that holds no `kind` run, to start a run where one is (stored
    settings, or `occupied`), and to resume with other settings."""
    if resuming and stored is None:
        raise SparringError(f"nothing to resume in {run_dir}: it holds no {kind} run. Start one with out=DIR")
    if not resuming and (stored is not None or occupied):
        raise SparringError(f"{run_dir} already holds a run: continue it with resume={run_dir}, or choose another out")
    if stored is not None and stored != settings:
        differ = sorted(k for k in stored.keys() | settings.keys() if stored.get(k) != settings.get(k))
        raise SparringError(f"cannot resume {run_dir}: it was run with other settings ({', '.join(differ)}); "
                            "repeat them (--resume takes the stored ones), or start a new run")


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
