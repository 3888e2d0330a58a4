"""Training with each step's games played on Ray workers (`rollout_workers`), each
holding a replica of the policy that gets the adapter through Ray's object store
after every update: the same seed trains the same run as one process does (the tiny
Llama choosing by its scores: the same games against itself, a checkpoint from the
pool and random; the same turns, losses and evaluations; the same adapter at the
end), and the replicas sample what the trainer holds (the logged sampler gap)."""

import re

import pytest
import torch
from safetensors.torch import load_file

from sparring.errors import SparringError
from sparring.learn.config import TrainConfig
from sparring.learn.trainer import train
from sparring.store import RunStore

ray = pytest.importorskip("ray", reason="Ray is the ray extra: pip install -e '.[ray]'")

SETTINGS = dict(mode="scored", temperature=1.0, games_per_step=8, micro_batch=8, eval_every=2, eval_games=6,
                eval_exploitability=False, dtype="float32", lr=1e-2, steps=3, checkpoint_every=1,
                opponents=("self", "pool", "random"))


def played(run):
    """Each match's result, and every turn's move and, for the policy, the version
    that played it (a checkpoint opponent is named by its path on workers, by
    checkpoint:NAME here, so names are left aside)."""
    store = RunStore(run, read_only=True)
    try:
        return [(m.index, m.returns, [(t.seat, t.agent == "policy", t.action,
                                       t.choice.policy_version if t.agent == "policy" else None)
                                      for t in store.turns(m.index)]) for m in store.matches()]
    finally:
        store.close()


def test_workers_train_the_run_one_process_trains(tiny_model_dir, tmp_path):
    here = train(TrainConfig(model=str(tiny_model_dir), out=str(tmp_path / "here"), **SETTINGS))
    try:
        spread = train(TrainConfig(model=str(tiny_model_dir), out=str(tmp_path / "spread"), rollout_workers=2,
                                   **SETTINGS))
    finally:
        ray.shutdown()
    games = played(here)
    assert games == played(spread) and len(games) == 24
    versions = {v for _, _, turns in games for _, is_policy, _, v in turns if is_policy}
    assert versions == {"step-000000", "step-000001", "step-000002"}  # each step played the newest adapter
    a = load_file(here / "checkpoints/step-000003/policy/adapter_model.safetensors")
    b = load_file(spread / "checkpoints/step-000003/policy/adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert any(float(a[k].abs().max()) > 1e-3 for k in a if "lora_B" in k)  # trained: B left zero
    logs = [RunStore(run, read_only=True) for run in (here, spread)]
    steps, evals = [log.train_steps() for log in logs], [log.train_evals() for log in logs]
    assert [s["loss"] for s in steps[1]] == pytest.approx([s["loss"] for s in steps[0]], abs=1e-5)
    assert max(s["sampler_gap"] for s in steps[1]) < 1e-4  # the replicas sampled what the trainer holds
    assert [e["step"] for e in evals[1]] == [0, 2] and evals[1] == evals[0]  # evaluations on the workers too


def test_rollout_workers_refuse_what_they_cannot_sync(tiny_model_dir, tmp_path):
    for changes, words in (({"lora": False}, "use lora=true and generation=hf"),
                           ({"rollout_workers": -1}, "give 0 (this process) or more workers"),
                           ({"rollout_workers": 0, "ray_address": "auto"}, "without rollout_workers")):
        with pytest.raises(SparringError, match=re.escape(words)):
            TrainConfig(model=str(tiny_model_dir), out=str(tmp_path), **{**SETTINGS, "rollout_workers": 2, **changes})
