"""The trainer on the tiny random Llama: direction of one update, which parameters
move, resume equivalence, and config refusals."""

import pytest
import torch
from safetensors.torch import load_file

from sparring.backends.base import GenerationRequest
from sparring.errors import SparringError
from sparring.learn.rl import Sample, TrainConfig, Trainer, completion_logprobs, read_train_log, train

TINY = dict(games_per_step=4, max_tokens=4, micro_batch=4, eval_every=0, dtype="float32", threads=1)


def _config(tiny_model_dir, tmp_path, **changes):
    return TrainConfig(model=str(tiny_model_dir), out=str(tmp_path), **{**TINY, **changes})


def _two_completions(trainer):
    backend = trainer.backend
    prompt = backend.prompt_ids((("user", "Pick a move."),))
    completions = backend.generate([GenerationRequest((("user", "Pick a move."),), max_new_tokens=4, seed=s) for s in (1, 2)])
    assert completions[0].token_ids != completions[1].token_ids
    return [Sample(prompt, c.token_ids, c.logprobs, 1.0, ("kuhn_poker", 0), reward=r, advantage=r)
            for c, r in zip(completions, (1.0, -1.0))]


@pytest.mark.parametrize("lora", [True, False])
def test_one_update_raises_the_rewarded_and_lowers_the_punished(tiny_model_dir, tmp_path, lora):
    trainer = Trainer(_config(tiny_model_dir, tmp_path, lora=lora, lr=1e-2, clip=0.2))
    samples = _two_completions(trainer)
    with torch.no_grad():
        before = completion_logprobs(trainer.model, samples, trainer.backend.pad_id)[0].sum(1)
        # the recorded behaviour log-probs are the model's own at temperature 1
        assert before.tolist() == pytest.approx([sum(s.behaviour_logprobs) for s in samples], abs=1e-4)
    trainer.update(samples, len(samples))
    with torch.no_grad():
        after = completion_logprobs(trainer.model, samples, trainer.backend.pad_id)[0].sum(1)
    assert after[0] > before[0] + 1e-3  # rewarded
    assert after[1] < before[1] - 1e-3  # punished
    trainer.close()


def test_temperature_is_applied_to_new_logprobs(tiny_model_dir, tmp_path):
    """Behaviour log-probs sampled at T=0.7 equal the trainer's recomputation at T=0.7."""
    trainer = Trainer(_config(tiny_model_dir, tmp_path, temperature=0.7))
    messages = (("user", "Pick a move."),)
    c = trainer.backend.generate([GenerationRequest(messages, max_new_tokens=5, temperature=0.7, seed=3)])[0]
    sample = Sample(c.prompt_token_ids, c.token_ids, c.logprobs, 0.7, ("g", 0), 0.0)
    with torch.no_grad():
        new, mask = completion_logprobs(trainer.model, [sample], trainer.backend.pad_id)
    assert new[mask].tolist() == pytest.approx(c.logprobs, abs=1e-4)
    trainer.close()


@pytest.mark.parametrize("mode", ["free", "scored"])
def test_a_step_changes_the_adapter_and_only_the_adapter(tiny_model_dir, tmp_path, mode):
    trainer = Trainer(_config(tiny_model_dir, tmp_path, mode=mode, lr=1e-2))
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    metrics = trainer.train_step()
    assert metrics["trained"] > 0
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    lora = {n for n in before if "lora_" in n}
    assert changed and changed <= lora  # base weights untouched
    assert any("lora_B" in n for n in changed)
    trainer.close()


def test_resume_equals_uninterrupted(tiny_model_dir, tmp_path):
    common = dict(steps=2, checkpoint_every=1, opponents=("self", "pool", "random"), lr=1e-2, ppo_epochs=2)
    straight = train(_config(tiny_model_dir, tmp_path / "straight", **common))
    first = train(_config(tiny_model_dir, tmp_path / "split", **{**common, "steps": 1}))
    resumed = train(TrainConfig(model=str(tiny_model_dir), resume=str(first), **{**TINY, **common}))
    a = torch.load(straight / "checkpoints/step-000002/state.pt", weights_only=False)
    b = torch.load(resumed / "checkpoints/step-000002/state.pt", weights_only=False)
    assert (a["step"], a["next_match"], a["baselines"], a["pool"]) == (b["step"], b["next_match"], b["baselines"], b["pool"])
    assert a["pool"]["checkpoints"] == ["checkpoints/step-000001", "checkpoints/step-000002"]
    assert a["rng"] == b["rng"]
    for key, state in a["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.allclose(value, b["optimizer"]["state"][key][name], atol=1e-6), name
    wa = load_file(straight / "checkpoints/step-000002/policy/adapter_model.safetensors")
    wb = load_file(resumed / "checkpoints/step-000002/policy/adapter_model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    steps, _ = read_train_log(resumed)
    assert [s["step"] for s in steps] == [1, 2]


def test_config_refusals(tiny_model_dir, tmp_path):
    with pytest.raises(SparringError, match="smaller than one turn"):
        _config(tiny_model_dir, tmp_path, games_per_step=0)
    with pytest.raises(SparringError, match="unknown game 'chess'"):
        _config(tiny_model_dir, tmp_path, game="chess")
    with pytest.raises(SparringError, match="opponent 'nobody' unknown"):
        _config(tiny_model_dir, tmp_path, opponents=("nobody",))
    with pytest.raises(SparringError, match="opponent .self. unknown"):
        _config(tiny_model_dir, tmp_path, eval_opponents=("self",))
    with pytest.raises(SparringError, match="temperature > 0"):
        _config(tiny_model_dir, tmp_path, temperature=0)
    with pytest.raises(SparringError, match="dtype=float32"):
        _config(tiny_model_dir, tmp_path, lora=False, dtype="bfloat16")
    with pytest.raises(SparringError, match="lora_targets to some of .*q_proj"):
        Trainer(_config(tiny_model_dir, tmp_path / "a", lora_targets=("c_attn",)))
    with pytest.raises(SparringError, match="nothing to resume"):
        Trainer(TrainConfig(model=str(tiny_model_dir), resume=str(tmp_path / "empty"), **TINY))


def test_resume_refuses_an_incompatible_run(tiny_model_dir, tmp_path):
    run = train(_config(tiny_model_dir, tmp_path, steps=1))
    with pytest.raises(SparringError, match=r"cannot resume .*lr \(0.0001 there, 0.5 now\)"):
        Trainer(TrainConfig(model=str(tiny_model_dir), resume=str(run), lr=0.5, **TINY))
    with pytest.raises(SparringError, match="already holds a training run"):
        Trainer(_config(tiny_model_dir, tmp_path, steps=1))


def test_a_checkpoint_plays_as_an_agent_with_the_trained_weights(tiny_model_dir, tmp_path):
    """`runs/x/checkpoints/latest` as an agent reference loads the adapter merged into
    its base model: the same scored policy as the trainer's live model."""
    import random

    from sparring.agents.base import Decision
    from sparring.agents.registry import AgentFactory
    from sparring.games.registry import make_game

    trainer = Trainer(_config(tiny_model_dir, tmp_path / "run", mode="scored", lr=5e-2, steps=1))
    trainer.run()
    game = make_game("kuhn_poker")
    state = game.new_initial_state(random.Random(0))
    decision = Decision(state=state, player=0, rng=random.Random(1), seed=1)
    live = trainer.policy.act([decision])[0].action_logprobs
    trainer.close()
    factory = AgentFactory(game)
    agent = factory.make(f"hf(path={tmp_path / 'run' / 'checkpoints' / 'latest'},mode=scored,dtype=float32)")
    loaded = agent.act([decision])[0].action_logprobs
    factory.close()
    assert loaded == pytest.approx(live, abs=1e-4)
    base = AgentFactory(game).make(f"hf(path={tiny_model_dir},mode=scored,dtype=float32)")
    assert base.act([decision])[0].action_logprobs != pytest.approx(live, abs=1e-4)  # training moved it
