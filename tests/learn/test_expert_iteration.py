"""Expert iteration: the filter keeps exactly the turns its rule names (a game won
by its own result, the opponent's forfeit included), each with the token ids it was
sampled with, and an update on them raises their likelihood."""

import pytest
import torch

from sparring.backends.threads import use_threads
from sparring.learn.advantages import expert_advantages
from sparring.learn.config import TrainConfig
from sparring.learn.loss import completion_logprobs
from sparring.learn.rollout import samples_from
from sparring.learn.trainer import POLICY_NAME, Trainer


def test_the_rules_by_hand():
    returns, roles = [2.0, -1.0, 1.0, 0.5, 0.5], [("g", 0), ("g", 0), ("g", 1), ("g", 1), ("g", 1)]
    valid = [True, True, False, True, True]
    # the last won by its opponent's forfeit: a win by the game, though its training reward is 0.5 here
    outcomes = [2.0, -1.0, 1.0, -1.0, 1.0]
    kept, baselines = expert_advantages(returns, outcomes, roles, valid, "win", {}, decay=0.5)
    assert kept == [1.0, 0.0, 0.0, 0.0, 1.0]  # the third won but named no legal move
    # RAE with decay 0.5 from 0: seat 0's baseline 0.5 * mean(2, -1) = 0.25; seat 1's 0.5 * mean(1, .5, .5) = 1/3
    assert baselines == pytest.approx({("g", 0): 0.25, ("g", 1): 1 / 3})
    kept, _ = expert_advantages(returns, outcomes, roles, valid, "advantage", {("g", 1): 1.0}, decay=0.5)
    # seat 1's baseline: 0.5 * 1 + 0.5 * 2/3 = 5/6, above 0.5: only seat 0's winner is kept
    assert kept == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_the_filter_keeps_exactly_the_valid_turns_of_won_games_with_their_ids(tiny_model_dir, tmp_path):
    use_threads(1)
    config = TrainConfig(model=str(tiny_model_dir), out=str(tmp_path), games_per_step=16, max_tokens=4,
                         micro_batch=8, eval_every=0, dtype="float32", estimator="expert", opponents=("random",),
                         mode="scored")  # every scored answer is legal: the random tiny model wins some
    trainer = Trainer(config)
    try:
        results = trainer.rollouts.play(config.games_per_step, trainer.rng, 0, None)
        samples = samples_from(results, POLICY_NAME)
        advantages, _ = expert_advantages([s.reward for s in samples], [s.outcome for s in samples],
                                          [s.role for s in samples], [s.valid for s in samples], "win", {})
        kept = [(s.prompt_ids, s.completion_ids) for s, a in zip(samples, advantages) if a == 1.0]
        expected = [(t.choice.prompt_token_ids, t.choice.token_ids) for r in results for t in r.turns
                    if t.agent == POLICY_NAME and not t.forced and t.valid and r.scored_returns[t.seat] > 0]
        assert kept == expected and 0 < len(kept) < len(samples)
        chosen = [s for s, a in zip(samples, advantages) if a == 1.0]
        for s in chosen:
            s.advantage = 1.0
        with torch.no_grad():
            before = completion_logprobs(trainer.model, chosen, trainer.backend.pad_id)[0].sum(1)
        trainer.update(chosen, len(chosen))
        with torch.no_grad():
            after = completion_logprobs(trainer.model, chosen, trainer.backend.pad_id)[0].sum(1)
        assert float((after - before).mean()) > 0  # fine-tuned toward its own best turns
    finally:
        trainer.close()
