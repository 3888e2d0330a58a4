"""Rollouts: a training step's games in the arena, and the policy's turns from them
as samples.

One step plays `games_per_step` games, each of a game drawn from the run's games by
their weights and against an opponent source drawn from the mix (the policy itself
in every seat by default). Only the policy's own turns are samples; an opponent's
are played, not learned from.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sparring.agents.base import Agent
from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan
from sparring.arena.results import outcome_score
from sparring.arena.workers import ByReference, Workers
from sparring.games.core import Game
from sparring.games.registry import split_version
from sparring.learn.opponents import CHECKPOINT_SOURCES, SELF, CheckpointOpponents, OpponentMix
from sparring.records import MatchResult


@dataclass
class Sample:
    """One of the policy's turns, as trained on.

    Free text: the sampled completion tokens and their behaviour log-probs at
    `temperature`. Scored choice: every legal answer's tokens (`options`), the one
    chosen, and the behaviour log-probability of that choice under the softmax over
    the answers' log-likelihoods at `temperature` (one value)."""

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]  # the sampled tokens; scored: the chosen answer's
    behaviour_logprobs: tuple[float, ...]  # per completion token; scored: (log pi(chosen),)
    temperature: float
    role: tuple[str, int]  # (game, seat)
    reward: float
    advantage: float = 0.0
    valid: bool = True  # the answer named a legal move
    outcome: float = 0.0  # the player's return by the game's own result (a forfeit: a loss, not the penalty)
    options: tuple[tuple[int, ...], ...] = ()  # scored: each legal answer's tokens
    chosen: int = -1  # scored: the index of the played answer in `options`
    turn: tuple[int, int] = (-1, -1)  # (match index, the turn's place in the match): where the store keeps it


def samples_from(results: list[MatchResult], policy_name: str) -> list[Sample]:
    """Every turn the policy answered with sampled tokens (invalid ones included:
    they carry the forfeit penalty); forced random moves are not the policy's.
    The temperature is the one the turn was drawn at, as the turn records it."""
    samples = []
    for result in results:
        game = split_version(result.game)[0]
        for seq, turn in enumerate(result.turns):
            choice = turn.choice
            if turn.agent != policy_name or turn.forced or not choice.token_ids:
                continue
            sample = Sample(
                prompt_ids=choice.prompt_token_ids, completion_ids=choice.token_ids,
                behaviour_logprobs=choice.logprobs, temperature=choice.sampling.temperature,
                role=(game, turn.seat), reward=float(result.returns[turn.seat]), valid=turn.valid,
                outcome=float(result.scored_returns[turn.seat]), turn=(result.index, seq),
            )
            if choice.sampling.mode == "scored":
                actions = list(choice.option_token_ids)
                sample.options = tuple(choice.option_token_ids[a] for a in actions)
                sample.chosen = actions.index(choice.action)
                sample.behaviour_logprobs = (choice.action_logprobs[choice.action],)
            samples.append(sample)
    return samples


class Rollouts:
    """Plays a step's games: draws each game and opponent, groups the games by
    opponent so each group is one batched arena run, and keeps the record of
    games against checkpoints that prioritised fictitious self-play draws by."""

    def __init__(self, games: dict[str, Game], factories: dict[str, AgentFactory], policy: Agent,
                 mix: OpponentMix, checkpoints: CheckpointOpponents, rule: InvalidMoveRule,
                 game_weights: tuple[float, ...], seed: int, workers: Workers | None = None):
        self.games, self.factories, self.policy = games, factories, policy
        self.mix, self.checkpoints, self.rule = mix, checkpoints, rule
        self.game_weights, self.seed = game_weights, seed
        self.workers = workers  # Ray workers play the games (the policy by name: the trainer pushes it)

    def play(self, n: int, rng: random.Random, first_index: int,
             on_match_end: Callable[[MatchResult], None] | None) -> list[MatchResult]:
        """`n` games with match indices from `first_index` on. Self-play puts the
        same agent object in every seat, so the policy sees the decisions of every
        game at once."""
        refs = list(self.games)
        # A one-game run draws nothing here, so its games are those it always played.
        games = refs * n if len(refs) == 1 else rng.choices(refs, weights=self.game_weights, k=n)
        sources = self.mix.sample(rng, n)
        checkpoint = {s: self.mix.pick_checkpoint(s, rng) for s in dict.fromkeys(sources) if s in CHECKPOINT_SOURCES}
        groups: dict[str, list[str]] = {}  # opponent -> the game of each of its matches
        for game, source in zip(games, sources):
            key = checkpoint.get(source) or (SELF if source in CHECKPOINT_SOURCES else source)
            groups.setdefault(key, []).append(game)
        results: list[MatchResult] = []
        index = first_index
        for key, group_games in groups.items():
            is_checkpoint = key in checkpoint.values()
            agents = {game: self._agents(key, game, is_checkpoint) for game in dict.fromkeys(group_games)}
            plan = []
            for game in group_games:
                plan += rotating_plan(self.games[game], agents[game], [index], self.seed)
                index += 1
            play = self.workers.play if self.workers else play_matches
            played = play(plan, self.rule, concurrency=len(plan), on_match_end=on_match_end)
            if is_checkpoint:
                score = sum(outcome_score(r.returns, r.seat_of(self.policy.name)) for r in played)
                self.mix.record(key, score, len(played))
            results += played
        return results

    def _agents(self, key: str, game: str, is_checkpoint: bool) -> list[Agent]:
        """The agents of a training game against opponent `key`, policy in seat 0
        (seats then rotate with the match index)."""
        players = self.games[game].spec.players
        if key == SELF:
            return [self.policy] * players
        if self.workers:  # built on the workers, by reference; a checkpoint by its path
            opponent = ByReference(str(self.checkpoints.path(key)) if is_checkpoint else key)
        else:
            opponent = self.checkpoints.agent(key) if is_checkpoint else self.factories[game].make(key)
        return [self.policy] + [opponent] * (players - 1)
