"""The trainer on the tiny random Llama: direction of one update, which parameters
move, resume equivalence, and config refusals."""

import pytest
import torch
from safetensors.torch import load_file

from sparring.backends.base import GenerationRequest
from sparring.backends.threads import use_threads
from sparring.errors import SparringError
from sparring.eval.curves import read_train_log
from sparring.learn.config import TrainConfig
from sparring.learn.loss import completion_logprobs
from sparring.learn.rollout import Sample
from sparring.learn.trainer import Trainer, measurable_game, train
from sparring.store import RunStore

TINY = dict(games_per_step=4, max_tokens=4, micro_batch=4, eval_every=0, dtype="float32")


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread, as these tests always ran on a shared 2-core CPU (the
    process sets its threads now, not the backend)."""
    before = torch.get_num_threads()
    use_threads(1)
    yield
    torch.set_num_threads(before)


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


def test_each_trained_turn_stores_its_reward_and_leave_one_out_advantage(tiny_model_dir, tmp_path):
    run = train(_config(tiny_model_dir, tmp_path, steps=1, estimator="rloo", games_per_step=6))
    store = RunStore(run, read_only=True)
    trained = {}  # (match, place) -> (seat, the training return: a forfeit's shaping, -1 and 0, else the game's)
    for match in store.results():
        for seq, turn in enumerate(match.turns):
            if turn.agent == "policy" and not turn.forced and turn.choice.token_ids:
                shaped = match.returns[turn.seat] if match.forfeit_by is None else (
                    -1.0 if match.forfeit_by == turn.seat else 0.0)
                trained[match.index, seq] = (turn.seat, shaped)
    signals = {(m, seq): v for m in store.finished_indices() for seq, v in store.turn_signals(m).items()}
    store.close()
    assert signals.keys() == trained.keys() and len(signals) > 4
    for key, (step, reward, advantage) in signals.items():
        seat, expected = trained[key]
        others = [r for k, (s, r) in trained.items() if s == seat and k != key]  # one game: a role is a seat
        assert (step, reward) == (1, expected)
        assert advantage == pytest.approx(expected - sum(others) / len(others))


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
    with pytest.raises(SparringError, match=r"cannot resume .*lr \(0.001 there, 0.5 now\)"):
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


# ---- several games, the pool, exploitability, TensorBoard --------------------------------


def test_several_games_in_one_run(tiny_model_dir, tmp_path):
    """Each step draws its games by weight, baselines are per (game, seat), and each
    game is evaluated against each eval opponent under the label 'GAME vs OPPONENT'."""
    from sparring.eval.curves import plot_curves
    from sparring.store import RunStore

    config = _config(tiny_model_dir, tmp_path, games=("tictactoe", "kuhn_poker"), game_weights=(1.0, 3.0),
                     games_per_step=8, steps=1, eval_every=1, eval_games=2, eval_exploitability=False)
    assert config.game_refs == ("tictactoe", "kuhn_poker")
    assert config.to_dict()["game"] == "tictactoe"  # `game` is the first of `games`
    trainer = Trainer(config)
    assert trainer.game.spec.id == "tictactoe" and set(trainer.games) == {"tictactoe", "kuhn_poker"}
    trainer.run()
    trainer.close()
    store = RunStore(tmp_path)
    played = [m.game.split("@")[0] for m in store.matches() if m.index < 8]
    store.close()
    steps, evals = read_train_log(tmp_path)
    assert steps[0]["games_by_game"] == {g: played.count(g) for g in ("tictactoe", "kuhn_poker")}
    assert set(played) == {"tictactoe", "kuhn_poker"} and played.count("kuhn_poker") > played.count("tictactoe")
    assert {k.rsplit(":", 1)[0] for k in steps[0]["baselines"]} == {"tictactoe", "kuhn_poker"}
    assert {k.split(":")[0] for k in steps[0]["mean_return_by_game"]} == {"tictactoe", "kuhn_poker"}
    assert [(e["step"], e["opponent"], e["game"], e["games"]) for e in evals] == [  # before training, then after
        (step, f"{game} vs random", game, 2.0) for step in (0, 1) for game in ("kuhn_poker", "tictactoe")]
    png, rows = plot_curves(tmp_path)
    assert png.exists() and {r[1] for r in rows} == {"kuhn_poker vs random", "tictactoe vs random"}


def test_one_game_weight_zero_plays_only_the_other(tiny_model_dir, tmp_path):
    trainer = Trainer(_config(tiny_model_dir, tmp_path, games=("tictactoe", "kuhn_poker"), game_weights=(0.0, 1.0),
                              store_turns=False))
    played = trainer.rollouts.play(trainer.config.games_per_step, trainer.rng, trainer.next_match, None)
    assert {r.game.split("@")[0] for r in played} == {"kuhn_poker"}
    trainer.close()


def test_multigame_yaml_loads(tmp_path):
    from pathlib import Path

    from sparring.cli.config import load_config

    path = Path(__file__).parents[2] / "configs" / "multigame.yaml"
    config = load_config(TrainConfig, path, {"out": str(tmp_path)})
    assert config.games == ("tictactoe", "kuhn_poker", "bargaining") and config.to_dict()["game"] == "tictactoe"
    assert config.game_weights == (1.0, 1.0, 1.0) and config.pool_sampling == "pfsp"
    assert config.eval_exploitability  # Kuhn poker is the one game that fits
    assert measurable_game(config.game_refs, config.eval_exploitability) == "kuhn_poker"


def test_pfsp_pool_keeps_its_record_through_a_checkpoint(tiny_model_dir, tmp_path):
    run = train(_config(tiny_model_dir, tmp_path, opponents=("pool",), pool_sampling="pfsp", steps=2,
                        checkpoint_every=1, store_turns=False))
    state = torch.load(run / "checkpoints/step-000002/state.pt", weights_only=False)
    # step 2 played its 4 games against the only checkpoint then, step-000001
    score, games = state["pool"]["records"]["checkpoints/step-000001"]
    assert games == 4 and 0 <= score <= 4
    steps, _ = read_train_log(run)
    assert steps[0]["pool_win_rate"] == {} and steps[1]["pool_win_rate"] == {"step-000001": score / 4}


def test_exploitability_is_measured_at_each_evaluation(tiny_model_dir, tmp_path):
    """Kuhn in scored mode: the policy's exact exploitability, recorded for the report."""
    from sparring.eval.exploitability import agent_policy, exploitability_report
    from sparring.eval.report import write_report
    from sparring.store import RunStore

    config = _config(tiny_model_dir, tmp_path, mode="scored", steps=1, eval_every=1, eval_games=2)
    trainer = Trainer(config)
    assert trainer.exploitability_game == "kuhn_poker"  # on by default in Kuhn poker
    trainer.run()
    expected = exploitability_report(trainer.game, agent_policy(trainer.game, trainer.policy, mode="exact"))
    trainer.close()
    store = RunStore(tmp_path)
    entries = store.exploitability()
    store.close()
    assert [(e.step, e.mode) for e in entries] == [(0, "exact"), (1, "exact")]  # before training, then after
    assert entries[1].exploitability == pytest.approx(expected.exploitability, abs=1e-6)
    # between 0 (Nash) and the most a Kuhn policy can lose to a best response
    assert 0 < entries[1].exploitability < 2
    _, md = write_report(tmp_path)
    assert "Exploitability over checkpoints" in md.read_text()


def test_tensorboard_refused_without_the_package(tiny_model_dir, tmp_path, monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else find_spec(name, *a))
    with pytest.raises(SparringError, match="pip install tensorboard"):
        _config(tiny_model_dir, tmp_path, tensorboard=True)


def test_tensorboard_scalars(tiny_model_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = train(_config(tiny_model_dir, tmp_path, steps=1, tensorboard=True, store_turns=False))
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/mean_return/0"} <= set(events.Tags()["scalars"])


def test_multigame_config_refusals_and_resume(tiny_model_dir, tmp_path):
    from sparring.learn.config import check_resumable

    with pytest.raises(SparringError, match="game=tictactoe and games=.*disagree"):
        _config(tiny_model_dir, tmp_path, game="tictactoe", games=("kuhn_poker", "tictactoe"))
    with pytest.raises(SparringError, match="2 games but 1 game_weights"):
        _config(tiny_model_dir, tmp_path, games=("kuhn_poker", "tictactoe"), game_weights=(1.0,))
    # the trainer refuses what it cannot measure before it plays (or creates) anything
    with pytest.raises(SparringError, match="no game of this run fits: tictactoe has perfect information"):
        Trainer(_config(tiny_model_dir, tmp_path / "ttt", game="tictactoe", eval_exploitability=True))
    with pytest.raises(SparringError, match="one game per run, and kuhn_poker, leduc_poker all fit"):
        Trainer(_config(tiny_model_dir, tmp_path / "two_fit", games=("kuhn_poker", "leduc_poker"),
                        eval_exploitability=True))
    assert not (tmp_path / "ttt").exists() and not (tmp_path / "two_fit").exists()
    both = _config(tiny_model_dir, tmp_path, games=("kuhn_poker", "leduc_poker"))
    assert measurable_game(both.game_refs, both.eval_exploitability) is None
    # a run saved before `games` existed resumes with the same one game, not another
    old = _config(tiny_model_dir, tmp_path).to_dict()
    for key in ("games", "game_weights", "pool_sampling"):
        del old[key]
    check_resumable(old, _config(tiny_model_dir, tmp_path).to_dict(), tmp_path)
    run = train(_config(tiny_model_dir, tmp_path / "two", games=("kuhn_poker", "tictactoe"), steps=1, store_turns=False))
    refused = r"cannot resume .*games \(\['kuhn_poker', 'tictactoe'\] there, \['kuhn_poker'\] now\)"
    with pytest.raises(SparringError, match=refused):
        Trainer(TrainConfig(model=str(tiny_model_dir), resume=str(run), **TINY))


def test_kill_9_then_resume_through_the_cli(tiny_model_dir, tmp_path):
    """A training run killed with SIGKILL after its first checkpoint resumes from it
    and finishes with every step logged once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import yaml

    from sparring.store import RunStore

    run_dir = tmp_path / "run"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({
        "model": str(tiny_model_dir), "steps": 6, "checkpoint_every": 1, "games_per_step": 4, "max_tokens": 4,
        "micro_batch": 4, "eval_every": 0, "dtype": "float32", "out": str(run_dir),
    }))
    command = [sys.executable, "-c", "from sparring.cli import main; main()", "--threads", "1", "train",
               "--config", "c.yaml"]
    first = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (run_dir / "checkpoints" / "latest").exists():
        assert first.poll() is None and time.time() < deadline, "no checkpoint before the deadline"
        time.sleep(0.2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    resumed = subprocess.run(command + ["--resume", str(run_dir)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    store = RunStore(run_dir)
    steps = [s["step"] for s in store.train_steps()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == "step-000006"
    assert len(store.matches()) == 6 * 4  # no match lost or played twice
