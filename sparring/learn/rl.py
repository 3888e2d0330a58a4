"""Self-play reinforcement learning for a local model (SPIRAL, arXiv 2506.24119).

One step: play `games_per_step` games of the shared policy, each of a game drawn
from `games` by `game_weights` and against an opponent drawn from the mix (itself in
every seat by default), turn each of the policy's turns into
a sample whose reward is the final return of the player who took it, compute
role-conditioned advantages, and take `ppo_epochs` policy-gradient steps over the
completion tokens that were sampled (the recorded ids, never re-tokenised text).
Every `eval_every` steps the policy plays fixed references in each game (and, in a
small imperfect-information game such as Kuhn poker, its exploitability is measured
exactly: `eval_exploitability`); every
`checkpoint_every` steps the whole trainer state is saved atomically, and
`resume=RUN_DIR` continues from the last checkpoint as if never stopped.

Log-probabilities. The backend records the behaviour log-prob of each sampled token
under the distribution it was drawn from: logits / temperature (top-p is refused
for training, so no truncation). New log-probs are computed with the same
temperature, so the PPO ratio exp(logp_new - logp_behaviour) is 1 on the first
epoch up to numerics. In scored mode the recorded tokens are the chosen answer's,
scored at temperature 1, and the gradient is that of the answer's log-likelihood;
it differs from the gradient of log softmax over the legal answers by a term
E_pi[grad score] times the mean advantage, which the per-role baseline keeps near
zero. (The exact softmax gradient needs every option's token ids in the Turn.)
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import importlib.util
import json
import math
import os
import random
import shutil
import sqlite3
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sparring.agents.llm import LLMAgent, LLMConfig
from sparring.arena.match import InvalidMoveRule, MatchResult, play_matches, rotating_seats
from sparring.arena.results import outcome_score
from sparring.backends.embedded import embedded_model_dir
from sparring.errors import SparringError
from sparring.games.registry import split_version
from sparring.learn.advantages import ESTIMATORS, RAE_DECAY, grpo_advantages, rae_advantages, rloo_advantages
from sparring.learn.evaluation import play_eval, summarize_eval
from sparring.learn.opponents import CHECKPOINT_SOURCES, SELF, CheckpointOpponents, OpponentMix
from sparring.refs import parse_ref
from sparring.store import RunStore

POLICY_NAME = "policy"
CHECKPOINTS = "checkpoints"
# Fields a resumed run may change; any other difference makes the checkpoint's
# optimizer state, baselines or pool meaningless for the new settings.
RESUMABLE_CHANGES = frozenset({"steps", "time_budget_s", "resume", "out", "threads", "device", "eval_games",
                               "eval_exploitability", "exploitability_samples", "tensorboard"})
# Fields added after runs were first saved, and the value an older run's config means.
LATER_FIELDS = {"games": lambda stored: [stored.get("game")], "game_weights": lambda stored: [],
                "pool_sampling": lambda stored: "uniform"}
TENSORBOARD_DIR = "tensorboard"


@dataclass(frozen=True)
class TrainConfig:
    game: str = ""
    """Game reference of a one-game run, e.g. kuhn_poker or tictactoe: the shorthand of
    games=(game,). Empty means the first of `games`, or kuhn_poker."""
    games: tuple[str, ...] = ()
    """Games of a multi-game run: each step draws the game of each of its games by
    `game_weights` (seeded). Empty means (game,)."""
    game_weights: tuple[float, ...] = ()
    """Probability weight of each game in `games`; empty means equal weights."""
    model: str = ""
    """Local model directory to train; empty means the embedded SmolLM2-135M."""
    mode: str = "free"
    """free: the model writes its answer (invalid answers forfeit); scored: it samples
    among the legal answers by their likelihood."""
    temperature: float = 1.0
    """Sampling temperature of the policy during training games (> 0)."""
    max_tokens: int = 0
    """Most tokens per answer in free mode; 0 means the agent's default (24)."""
    reasoning: bool = False
    """Ask the model to think before answering (free mode; long completions)."""
    opponents: tuple[str, ...] = ("self",)
    """Opponent sources: self, pool (a past checkpoint), latest (newest checkpoint),
    or any fixed agent reference (random, cfr, mcts(simulations=50), ...)."""
    opponent_weights: tuple[float, ...] = ()
    """Probability weight of each opponent source; empty means equal weights."""
    pool_size: int = 8
    """Checkpoints kept in the opponent pool (newest first out of the window)."""
    pool_sampling: str = "uniform"
    """How a `pool` game draws its checkpoint: uniform, or pfsp (prioritised fictitious
    self-play, AlphaStar: weight (1 - p)^2 with p the policy's recent win rate against
    the checkpoint, 1/2 before it is played)."""
    estimator: str = "rae"
    """Advantage estimator: rae (SPIRAL's per-role EMA baseline), grpo or rloo."""
    rae_decay: float = RAE_DECAY
    """EMA decay a of the RAE baseline b <- a*b + (1-a)*mean(R) (SPIRAL: 0.95)."""
    steps: int = 100
    """Training steps in total (a resumed run continues up to this many)."""
    time_budget_s: float = 0.0
    """Stop (with a checkpoint) after this many seconds; 0 means no limit."""
    games_per_step: int = 32
    """Games played per step; their policy turns are the step's batch."""
    micro_batch: int = 8
    """Sequences per forward/backward pass (gradient accumulation over the batch)."""
    lr: float = 1e-3
    """AdamW learning rate (constant); 1e-3 learned Kuhn poker in 15 CPU minutes with LoRA r=8."""
    ppo_epochs: int = 1
    """Optimizer steps per batch; more than 1 reuses the samples with PPO clipping."""
    clip: float = 0.2
    """PPO clip range epsilon of the ratio; 0 turns clipping off."""
    kl_coef: float = 0.0
    """Weight of the KL penalty to the initial model (k3 estimator per token)."""
    max_grad_norm: float = 1.0
    """Gradient clipping norm; 0 turns it off."""
    lora: bool = True
    """Train a LoRA adapter (CPU default: ~2x faster, tiny checkpoints) instead of
    every weight."""
    lora_r: int = 8
    """LoRA rank."""
    lora_alpha: int = 16
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Names of the linear modules that get adapters."""
    dtype: str = "auto"
    """Model weights: auto (bfloat16 for LoRA, float32 for full fine-tuning),
    bfloat16, float16 or float32."""
    threads: int = 0
    """CPU threads; 0 picks the cores free now."""
    device: str = "cpu"
    """torch device of the policy: cpu, cuda, cuda:1, ..."""
    invalid_penalty: float = -1.0
    """Return of a player whose answer cannot be read as a legal move (it forfeits)."""
    invalid_opponent_reward: float = 0.0
    """Return of the other players when someone forfeits."""
    invalid_retries: int = 0
    """Times an invalid answer is retried with feedback before the forfeit."""
    eval_opponents: tuple[str, ...] = ("random",)
    """Fixed references the policy is evaluated against."""
    eval_games: int = 64
    """Games per evaluation opponent (seats alternate)."""
    eval_every: int = 10
    """Evaluate every this many steps (and at the end); 0 turns evaluation off."""
    eval_exploitability: bool | None = None
    """At each evaluation, also measure the policy's exploitability (NashConv / 2) in
    the run's small imperfect-information game (kuhn_poker, leduc_poker, ...): exact in
    scored mode, from `exploitability_samples` answers per information state in free
    mode. Recorded for `sparring report`. One game per run: true refuses a run where
    no game, or several, fit. Empty (None) means on when kuhn_poker is played (12
    information states: cheap) and no other game fits; else off. Leduc (936) is opt-in."""
    exploitability_samples: int = 8
    """Answers per information state when exploitability is sampled (free mode)."""
    tensorboard: bool = False
    """Also write every step's scalars for TensorBoard into RUN_DIR/tensorboard
    (needs `pip install tensorboard`)."""
    checkpoint_every: int = 10
    """Save a checkpoint every this many steps (and at the end)."""
    seed: int = 0
    """Seed of games, opponent draws and adapter initialisation."""
    store_turns: bool = True
    """Write every training game and its turns to the run store."""
    out: str = ""
    """Run directory of a new run."""
    resume: str = ""
    """Run directory of a run to continue from its last checkpoint."""

    def __post_init__(self):
        from sparring.agents.registry import AGENT_KINDS
        from sparring.games.registry import make_game

        # `game` is the one-game shorthand of `games`; after this both are set and agree.
        if self.game and self.games and self.game != self.games[0]:
            raise SparringError(
                f"game={self.game} and games={list(self.games)} disagree: give games only for several games "
                f"(game is its one-game shorthand), or game only"
            )
        object.__setattr__(self, "games", tuple(self.games) or (self.game or "kuhn_poker",))
        object.__setattr__(self, "game", self.games[0])
        if len(set(self.games)) != len(self.games):
            raise SparringError(f"games={list(self.games)} names a game twice: give each once and weigh it with game_weights")
        if self.game_weights and len(self.game_weights) != len(self.games):
            raise SparringError(
                f"{len(self.games)} games but {len(self.game_weights)} game_weights: give one weight each, or none"
            )
        if self.game_weights and (min(self.game_weights) < 0 or sum(self.game_weights) <= 0):
            raise SparringError(f"game_weights must be >= 0 with a positive sum, got {list(self.game_weights)}")
        made = [make_game(g) for g in self.games]  # an unknown game raises a SparringError naming the known ones
        if self.eval_exploitability is None:  # on for Kuhn poker, when no other game fits too
            object.__setattr__(self, "eval_exploitability",
                               any(g.spec.id == "kuhn_poker" for g in made) and _exploitability_fits(self.games))
        if self.eval_exploitability:
            _exploitability_game(self.games)  # refuses when no game, or more than one, fits
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise SparringError("tensorboard=true needs the tensorboard package: pip install tensorboard")
        if self.temperature <= 0:
            raise SparringError(
                f"temperature {self.temperature}: training needs a sampling policy, set temperature > 0 (e.g. 1.0)"
            )
        self.llm_config()  # the agent's own checks: mode, reasoning, token budget
        if self.games_per_step < 1:
            raise SparringError(
                f"games_per_step={self.games_per_step} gives a batch smaller than one turn: set games_per_step >= 1"
            )
        if self.micro_batch < 1:
            raise SparringError(f"micro_batch must be >= 1, got {self.micro_batch}")
        if self.estimator not in ESTIMATORS:
            raise SparringError(f"estimator '{self.estimator}' unknown: use one of {', '.join(ESTIMATORS)}")
        if not 0 <= self.rae_decay < 1:
            raise SparringError(f"rae_decay must be in [0, 1), got {self.rae_decay} (SPIRAL uses 0.95)")
        if not self.opponents:
            raise SparringError("no opponents: give at least one, e.g. opponents=('self',)")
        sources = [(ref, True) for ref in self.opponents] + [(ref, False) for ref in self.eval_opponents]
        for ref, training in sources:
            kind, _ = parse_ref(ref)
            if training and ref in (SELF, *CHECKPOINT_SOURCES):
                continue
            if kind == "human" or (kind not in AGENT_KINDS and not kind.startswith("always_")):
                raise SparringError(
                    f"opponent '{ref}' unknown: use self, pool, latest (training only) or a fixed agent: "
                    f"{', '.join(k for k in AGENT_KINDS if k != 'human')}"
                )
        OpponentMix(self.opponents, self.weights, self.pool_size, self.pool_sampling)  # weights, pool sampling
        for name, value, low in (("steps", self.steps, 0), ("ppo_epochs", self.ppo_epochs, 1),
                                 ("lora_r", self.lora_r, 1), ("pool_size", self.pool_size, 1),
                                 ("eval_every", self.eval_every, 0), ("eval_games", self.eval_games, 1),
                                 ("checkpoint_every", self.checkpoint_every, 1),
                                 ("invalid_retries", self.invalid_retries, 0),
                                 ("exploitability_samples", self.exploitability_samples, 1)):
            if value < low:
                raise SparringError(f"{name} must be >= {low}, got {value}")
        if self.lr <= 0:
            raise SparringError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.clip < 1:
            raise SparringError(f"clip must be in [0, 1), got {self.clip} (0.2 is usual; 0 turns clipping off)")
        if self.ppo_epochs > 1 and self.clip == 0:
            raise SparringError("ppo_epochs > 1 reuses samples off-policy: set clip > 0 (e.g. 0.2) or ppo_epochs=1")
        if self.kl_coef < 0 or self.max_grad_norm < 0:
            raise SparringError("kl_coef and max_grad_norm must be >= 0")
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise SparringError(f"dtype '{self.dtype}' unknown: use auto, bfloat16, float16 or float32")
        if not self.lora and self.dtype in ("bfloat16", "float16"):
            raise SparringError(
                f"full fine-tuning in {self.dtype} loses small updates in rounding: use dtype=float32 (or auto), or lora=true"
            )
        if not self.out and not self.resume:
            raise SparringError("no run directory: set out=DIR for a new run or resume=DIR to continue one")
        if self.out and self.resume and Path(self.out) != Path(self.resume):
            raise SparringError(f"out={self.out} and resume={self.resume} differ: give only resume=DIR to continue a run")

    @property
    def weights(self) -> tuple[float, ...]:
        return self.opponent_weights or tuple(1.0 for _ in self.opponents)

    @property
    def game_probabilities(self) -> tuple[float, ...]:
        return self.game_weights or tuple(1.0 for _ in self.games)

    @property
    def model_dtype(self) -> str:
        return self.dtype if self.dtype != "auto" else ("bfloat16" if self.lora else "float32")

    def llm_config(self) -> LLMConfig:
        return LLMConfig(mode=self.mode, reasoning=self.reasoning, max_tokens=self.max_tokens,
                         temperature=self.temperature)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# ---- samples and the loss -------------------------------------------------------------


@dataclass
class Sample:
    """One of the policy's turns, as trained on."""

    prompt_ids: list[int]
    completion_ids: list[int]
    behaviour_logprobs: list[float]  # per completion token, at `temperature`
    temperature: float
    role: tuple[str, int]  # (game, seat)
    reward: float
    advantage: float = 0.0


def samples_from(results: list[MatchResult], policy_name: str, temperature: float) -> list[Sample]:
    """Every turn the policy answered with sampled tokens (invalid ones included:
    they carry the forfeit penalty); forced random moves are not the policy's."""
    samples = []
    for result in results:
        game = split_version(result.game)[0]
        for turn in result.turns:
            if turn.agent != policy_name or turn.forced or not turn.token_ids:
                continue
            samples.append(Sample(
                prompt_ids=list(turn.prompt_token_ids), completion_ids=list(turn.token_ids),
                behaviour_logprobs=list(turn.logprobs), temperature=temperature,
                role=(game, turn.player), reward=float(result.returns[turn.player]),
            ))
    return samples


def completion_logprobs(model, samples: list[Sample], pad_id: int, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probs of each sample's completion tokens under `model` at the sample's
    temperature: ([B, C], mask [B, C]) with C the longest completion; rows are
    right-aligned (left padding), so the completion is the last tokens of a row."""
    from sparring.backends.hf import left_pad

    ids, attention = left_pad([s.prompt_ids + s.completion_ids for s in samples], pad_id, device)
    _, completion_mask = left_pad([s.completion_ids for s in samples], pad_id, device)
    completion_mask, longest = completion_mask.bool(), completion_mask.shape[1]
    position = (attention.cumsum(-1) - 1).clamp(min=0)
    # Only the last C+1 positions' logits are needed: position t predicts token t+1.
    logits = model(input_ids=ids, attention_mask=attention, position_ids=position,
                   logits_to_keep=longest + 1).logits[:, :-1].float()  # [B, C, V]
    temperature = torch.tensor([s.temperature for s in samples], device=device).view(-1, 1, 1)
    logp = torch.log_softmax(logits / temperature, dim=-1)
    token_logp = logp.gather(-1, ids[:, -longest:].unsqueeze(-1)).squeeze(-1)  # [B, C]
    return token_logp.masked_fill(~completion_mask, 0.0), completion_mask


def right_aligned(values: list[list[float]], longest: int, device: str = "cpu") -> torch.Tensor:
    out = torch.zeros((len(values), longest))
    for i, row in enumerate(values):
        if row:
            out[i, longest - len(row):] = torch.tensor(row)
    return out.to(device)


def policy_loss(new_logp: torch.Tensor, mask: torch.Tensor, samples: list[Sample], clip: float,
                ref_logp: torch.Tensor | None, kl_coef: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over samples of the per-token mean of the (clipped) surrogate loss
    -min(r*A, clip(r)*A) + kl_coef * KL, r = exp(logp_new - logp_behaviour).
    The caller divides by the batch size. Per-turn token means keep long answers
    from outweighing short ones (as GRPO)."""
    longest = new_logp.shape[1]
    old = right_aligned([s.behaviour_logprobs for s in samples], longest, new_logp.device)
    advantage = torch.tensor([s.advantage for s in samples], device=new_logp.device).unsqueeze(1)  # [B, 1]
    ratio = torch.exp(new_logp - old)
    surrogate = ratio * advantage
    if clip > 0:
        surrogate = torch.minimum(surrogate, ratio.clamp(1 - clip, 1 + clip) * advantage)
    per_token = -surrogate
    kl = torch.zeros_like(new_logp)
    if ref_logp is not None:
        # k3 estimator of KL(pi || ref) (Schulman 2020): unbiased, always >= 0.
        delta = ref_logp - new_logp
        kl = torch.exp(delta) - delta - 1
        per_token = per_token + kl_coef * kl
    fmask = mask.float()
    lengths = fmask.sum(1).clamp(min=1)
    loss = ((per_token * fmask).sum(1) / lengths).sum()
    clipped = ((ratio - 1).abs() > clip).float() if clip > 0 else torch.zeros_like(ratio)
    stats = {
        "kl": float(((kl * fmask).sum(1) / lengths).sum()),
        "clip_frac": float(((clipped * fmask).sum(1) / lengths).sum()),
    }
    return loss, stats


# ---- the trainer -----------------------------------------------------------------------


def train(config: TrainConfig, console=None) -> Path:
    """Train, or continue training, and return the run directory."""
    trainer = Trainer(config, console)
    try:
        trainer.run()
    finally:
        trainer.close()
    return trainer.run_dir


class Trainer:
    def __init__(self, config: TrainConfig, console=None):
        from sparring.agents.registry import AgentFactory
        from sparring.games.registry import make_game

        self.console = console
        self.run_dir = Path(config.resume or config.out)
        latest = _latest_checkpoint(self.run_dir)
        if config.resume and latest is None:
            raise SparringError(
                f"nothing to resume in {self.run_dir}: it has no training checkpoint. Start a new run with out=DIR"
            )
        if not config.resume and latest is not None:
            raise SparringError(
                f"{self.run_dir} already holds a training run: continue it with resume={self.run_dir}, or choose another out"
            )
        self.store = RunStore(self.run_dir, create=True)
        if latest is not None:
            _check_compatible(self.store.get_meta("train_config"), config.to_dict(), self.run_dir)
        self.config = config
        self.games = {ref: make_game(ref) for ref in config.games}
        self.factories = {ref: AgentFactory(game) for ref, game in self.games.items()}
        self.game = self.games[config.game]  # the first game; the one game of a one-game run
        self.factory = self.factories[config.game]
        self.rule = InvalidMoveRule(retries=config.invalid_retries, then="forfeit",
                                    penalty=config.invalid_penalty, opponent_reward=config.invalid_opponent_reward)
        torch.manual_seed(config.seed)  # adapter initialisation
        self.backend = _load_backend(config.model or str(embedded_model_dir()), config)
        self.model = self.backend.model
        if config.lora:
            self.model = _add_lora(self.model, config)
        else:
            for p in self.model.parameters():
                p.requires_grad_(True)
        self.backend.model = self.model  # the arena samples from the current policy
        self.backend.weights_changed()
        self.reference = None
        if config.kl_coef > 0 and not config.lora:
            self.reference = copy.deepcopy(self.model).requires_grad_(False)  # frozen initial weights
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.trainable, lr=config.lr, weight_decay=0.0)
        self.policy = LLMAgent(self.backend, config.llm_config(), name=POLICY_NAME)
        self.mix = OpponentMix(config.opponents, config.weights, config.pool_size, config.pool_sampling)
        self.checkpoint_opponents = CheckpointOpponents(self._load_checkpoint_agent, self.run_dir)
        self.rng = random.Random(f"train:{config.seed}")
        self.baselines: dict[tuple[str, int], float] = {}
        self.step = 0
        self.next_match = 0
        _create_log_tables(self.store.db)
        if latest is not None:
            self._load(latest)
        self.exploitability_game = _exploitability_game(config.games) if config.eval_exploitability else None
        self.tensorboard = None
        if config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a resumed run replays (logged after its checkpoint)
            self.tensorboard = SummaryWriter(str(self.run_dir / TENSORBOARD_DIR), purge_step=self.step + 1)
        self.store.set_meta("kind", "train")
        self.store.set_meta("train_config", config.to_dict())

    # ---- one step ----------------------------------------------------------------------

    def run(self) -> None:
        start = time.perf_counter()
        last_saved = self.step
        while self.step < self.config.steps:
            if self.config.time_budget_s and time.perf_counter() - start > self.config.time_budget_s:
                self._say(f"time budget of {self.config.time_budget_s:g} s used up at step {self.step}")
                break
            metrics = self.train_step()
            self._log_step(metrics)
            if self.config.eval_every and self.step % self.config.eval_every == 0:
                self.evaluate()
            if self.step % self.config.checkpoint_every == 0:
                self.save()
                last_saved = self.step
        if self.step != last_saved or _latest_checkpoint(self.run_dir) is None:
            if self.config.eval_every and self.step % self.config.eval_every:
                self.evaluate()
            self.save()

    def train_step(self) -> dict[str, Any]:
        config = self.config
        t0 = time.perf_counter()
        results = self.play_step_games()
        t1 = time.perf_counter()
        temperature = 1.0 if config.mode == "scored" else config.temperature
        samples = samples_from(results, POLICY_NAME, temperature)
        returns, roles = [s.reward for s in samples], [s.role for s in samples]
        if config.estimator == "rae":
            advantages, self.baselines = rae_advantages(returns, roles, self.baselines, config.rae_decay)
        elif config.estimator == "grpo":
            advantages = grpo_advantages(returns, roles)
        else:
            advantages = rloo_advantages(returns, roles)
        for sample, advantage in zip(samples, advantages):
            sample.advantage = advantage
        # A zero advantage gives no gradient: drop the turn rather than spend a pass on it.
        kept = [s for s in samples if abs(s.advantage) > 1e-9]
        update = self.update(kept, len(samples))
        t2 = time.perf_counter()
        self.step += 1

        policy_turns = [t for r in results for t in r.turns if t.agent == POLICY_NAME and not t.forced]
        by_role: dict[str, list[float]] = defaultdict(list)  # seat -> returns, all games together
        by_game_role: dict[str, list[float]] = defaultdict(list)  # "game:seat" -> returns
        for result in results:
            for seat, name in enumerate(result.seats):
                if name == POLICY_NAME:
                    by_role[str(seat)].append(result.returns[seat])
                    by_game_role[f"{split_version(result.game)[0]}:{seat}"].append(result.returns[seat])
        tokens = [lp for s in samples for lp in s.behaviour_logprobs]
        return {
            "step": self.step,
            "games": len(results),
            "games_by_game": {g: sum(split_version(r.game)[0] == g for r in results) for g in config.games},
            "samples": len(samples),
            "trained": len(kept),
            "loss": update["loss"],
            "kl": update["kl"],
            "clip_frac": update["clip_frac"],
            "grad_norm": update["grad_norm"],
            "mean_return": {role: sum(v) / len(v) for role, v in sorted(by_role.items())},
            "mean_return_by_game": {role: sum(v) / len(v) for role, v in sorted(by_game_role.items())},
            "pool_win_rate": {Path(c).name: p for c, p in self.mix.win_rates().items()},
            "baselines": {f"{g}:{seat}": b for (g, seat), b in sorted(self.baselines.items())},
            "invalid_rate": sum(not t.valid for t in policy_turns) / max(1, len(policy_turns)),
            "completion_len": sum(len(s.completion_ids) for s in samples) / max(1, len(samples)),
            # -mean log-prob of the sampled tokens estimates the per-token entropy.
            "entropy": -sum(tokens) / len(tokens) if tokens else math.nan,
            "lr": self.optimizer.param_groups[0]["lr"],
            "generate_s": t1 - t0,
            "train_s": t2 - t1,
        }

    def play_step_games(self) -> list[MatchResult]:
        """This step's games, grouped by opponent so each group is one batched
        arena run over all its games (self-play puts the same agent object in every
        seat; the policy sees the decisions of every game at once). Games against a
        checkpoint add to its record, which PFSP draws by."""
        config = self.config
        n = config.games_per_step
        # A one-game run draws nothing here, so its games are those it always played.
        games = (list(config.games) * n if len(config.games) == 1
                 else self.rng.choices(config.games, weights=config.game_probabilities, k=n))
        sources = self.mix.sample(self.rng, n)
        checkpoint = {s: self.mix.pick_checkpoint(s, self.rng) for s in dict.fromkeys(sources) if s in CHECKPOINT_SOURCES}
        groups: dict[str, list[str]] = {}  # opponent -> the game of each of its matches
        for game, source in zip(games, sources):
            key = checkpoint.get(source) or (SELF if source in CHECKPOINT_SOURCES else source)
            groups.setdefault(key, []).append(game)
        results: list[MatchResult] = []
        for key, group_games in groups.items():
            indices = range(self.next_match, self.next_match + len(group_games))
            self.next_match += len(group_games)
            game_of = dict(zip(indices, group_games))
            seating = {g: rotating_seats(self._step_agents(key, g, key in checkpoint.values()))
                       for g in dict.fromkeys(group_games)}
            write = self.store.write_match if config.store_turns else None
            played = play_matches(lambda i: self.games[game_of[i]], lambda i: seating[game_of[i]](i), indices,
                                  config.seed, self.rule, concurrency=len(indices), on_match_end=write)
            if key in checkpoint.values():
                score = sum(outcome_score(r.returns, r.seats.index(POLICY_NAME)) for r in played)
                self.mix.record(key, score, len(played))
            results += played
        return results

    def _step_agents(self, key: str, game: str, is_checkpoint: bool) -> list:
        """The agents of a training game against opponent `key`, policy in seat 0."""
        players = self.games[game].spec.players
        if key == SELF:
            return [self.policy] * players
        opponent = self.checkpoint_opponents.agent(key) if is_checkpoint else self.factories[game].make(key)
        return [self.policy] + [opponent] * (players - 1)

    def update(self, samples: list[Sample], batch_size: int) -> dict[str, float]:
        """`ppo_epochs` optimizer steps over the samples, micro-batched; the loss is
        averaged over the whole batch (dropped zero-advantage turns included)."""
        config = self.config
        totals = {"loss": 0.0, "kl": 0.0, "clip_frac": 0.0, "grad_norm": 0.0}
        if not samples:
            return totals
        ref_cache: dict[int, torch.Tensor] = {}
        for _ in range(config.ppo_epochs):
            self.optimizer.zero_grad(set_to_none=True)
            epoch = {"loss": 0.0, "kl": 0.0, "clip_frac": 0.0}
            for start in range(0, len(samples), config.micro_batch):
                chunk = samples[start:start + config.micro_batch]
                ref = ref_cache.get(start)
                if config.kl_coef > 0 and ref is None:
                    ref = ref_cache[start] = self._reference_logprobs(chunk)
                new, mask = completion_logprobs(self.model, chunk, self.backend.pad_id, self.backend.config.device)
                loss, stats = policy_loss(new, mask, chunk, config.clip, ref, config.kl_coef)
                (loss / batch_size).backward()
                epoch["loss"] += float(loss.detach()) / batch_size
                epoch["kl"] += stats["kl"] / len(samples)
                epoch["clip_frac"] += stats["clip_frac"] / len(samples)
            norm = torch.nn.utils.clip_grad_norm_(self.trainable, config.max_grad_norm or math.inf)
            self.optimizer.step()
            for key in epoch:
                totals[key] += epoch[key] / config.ppo_epochs
            totals["grad_norm"] += float(norm) / config.ppo_epochs
        self.optimizer.zero_grad(set_to_none=True)
        self.backend.weights_changed()  # the arena samples from the updated policy next
        return totals

    @torch.no_grad()
    def _reference_logprobs(self, chunk: list[Sample]) -> torch.Tensor:
        if self.config.lora:
            with self.model.disable_adapter():  # the base weights are the initial model
                return completion_logprobs(self.model, chunk, self.backend.pad_id, self.backend.config.device)[0]
        return completion_logprobs(self.reference, chunk, self.backend.pad_id, self.backend.config.device)[0]

    # ---- evaluation and logging ----------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """Play every evaluation opponent in every game, and measure exploitability
        where it fits. Returns the summaries by label: the opponent in a one-game run,
        "GAME vs OPPONENT" in a multi-game run (the `opponent` of the train_evals row);
        the exploitability report, if any, under "exploitability"."""
        out: dict[str, Any] = {}
        for game in self.config.games:
            for ref in self.config.eval_opponents:
                label = eval_label(game, ref, len(self.config.games))
                results = play_eval(self.games[game], self.policy, self.factories[game].make(ref),
                                    self.config.eval_games, self.config.seed, self.rule)
                summary = {**summarize_eval(results, POLICY_NAME), "game": game, "against": ref}
                out[label] = summary
                with self.store.db:
                    self.store.db.execute("INSERT OR REPLACE INTO train_evals VALUES (?, ?, ?)",
                                          (self.step, label, json.dumps(summary)))
                self._say(
                    f"  eval step {self.step} {'vs ' if label == ref else ''}{label}: "
                    f"win {summary['win']:.2f}±{summary['win_ci']:.2f} "
                    f"draw {summary['draw']:.2f} return {summary['return']:+.3f}±{summary['return_ci']:.3f} "
                    f"invalid {summary['invalid']:.2f}±{summary['invalid_ci']:.2f}"
                )
                self._scalars({f"eval/{label}/{k}": summary[k] for k in ("win_or_draw", "return", "invalid")})
        if self.exploitability_game is not None:
            out["exploitability"] = report = self.measure_exploitability()
            self._say(f"  exploitability step {self.step}: " + report.summary().replace("\n", "; "))
            self._scalars({f"eval/{self.exploitability_game}/exploitability": report.exploitability,
                           f"eval/{self.exploitability_game}/nash_conv": report.nash_conv})
        return out

    def measure_exploitability(self):
        """The policy's exploitability now, recorded in the run's meta for reports:
        exact where its answers carry action log-probs (scored mode), else from
        `exploitability_samples` answers per information state with a bootstrap error."""
        from sparring.eval.exploitability import agent_policy, exploitability_report
        from sparring.eval.report import add_exploitability

        game = self.games[self.exploitability_game]
        policy = agent_policy(game, self.policy, samples=self.config.exploitability_samples, seed=self.config.seed)
        report = exploitability_report(game, policy, seed=self.config.seed)
        add_exploitability(self.store, self.step, report)
        return report

    def _log_step(self, m: dict[str, Any]) -> None:
        with self.store.db:
            self.store.db.execute("INSERT OR REPLACE INTO train_steps VALUES (?, ?, ?)",
                                  (m["step"], json.dumps(m), time.time()))
        self._scalars({f"train/{k}": v for k, v in _flat(m).items() if k != "step"})
        returns = " ".join(f"R{role}={v:+.2f}" for role, v in m["mean_return"].items())
        one_game = len(self.config.games) == 1
        base = " ".join(f"b{k.split(':')[-1] if one_game else '[' + k + ']'}={v:+.2f}" for k, v in m["baselines"].items())
        self._say(
            f"step {m['step']}: loss {m['loss']:+.4f} {returns} {base} invalid {m['invalid_rate']:.2f} "
            f"len {m['completion_len']:.1f} H {m['entropy']:.2f} kl {m['kl']:.4f} lr {m['lr']:.1e} "
            f"trained {m['trained']}/{m['samples']} gen {m['generate_s']:.1f}s train {m['train_s']:.1f}s"
        )

    def _scalars(self, values: dict[str, float | None]) -> None:
        if self.tensorboard is not None:
            for tag, value in values.items():
                if value is not None:
                    self.tensorboard.add_scalar(tag, value, self.step)

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)

    # ---- checkpoints -----------------------------------------------------------------------

    def save(self) -> Path:
        """Write checkpoints/step-N atomically (a temporary directory renamed into
        place, then the `latest` pointer replaced), add it to the opponent pool, and
        drop checkpoints that are neither in the pool nor the latest."""
        root = self.run_dir / CHECKPOINTS
        name = f"step-{self.step:06d}"
        relative = f"{CHECKPOINTS}/{name}"
        self.mix.add_checkpoint(relative)
        tmp = root / f".tmp-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.model.save_pretrained(tmp / "policy")
        if not self.config.lora:
            self.backend.tokenizer.save_pretrained(tmp / "policy")
        torch.save({
            "step": self.step,
            "next_match": self.next_match,
            "optimizer": self.optimizer.state_dict(),
            "baselines": [[g, seat, b] for (g, seat), b in self.baselines.items()],
            "pool": self.mix.state_dict(),
            "rng": self.rng.getstate(),
        }, tmp / "state.pt")
        final = root / name
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        pointer = root / ".latest.tmp"
        pointer.write_text(name)
        os.replace(pointer, root / "latest")
        keep = {Path(p).name for p in self.mix.checkpoints} | {name}
        for old in root.glob("step-*"):
            if old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)
        self._say(f"  checkpoint {final}")
        return final

    def _load(self, checkpoint: Path) -> None:
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        state = torch.load(checkpoint / "state.pt", weights_only=False, map_location=self.backend.config.device)
        if self.config.lora:
            set_peft_model_state_dict(self.model, load_file(checkpoint / "policy" / "adapter_model.safetensors"))
        else:
            from transformers import AutoModelForCausalLM

            saved = AutoModelForCausalLM.from_pretrained(checkpoint / "policy", dtype=getattr(torch, self.config.model_dtype))
            self.model.load_state_dict(saved.state_dict())
        self.backend.weights_changed()
        self.optimizer.load_state_dict(state["optimizer"])
        self.baselines = {(g, seat): b for g, seat, b in state["baselines"]}
        self.mix.load_state_dict(state["pool"])
        self.rng.setstate(state["rng"])
        self.step, self.next_match = state["step"], state["next_match"]
        # Games, steps and evaluations logged after this checkpoint are replayed.
        with self.store.db:
            self.store.db.execute("DELETE FROM turns WHERE match_idx >= ?", (self.next_match,))
            self.store.db.execute("DELETE FROM matches WHERE idx >= ?", (self.next_match,))
            self.store.db.execute("DELETE FROM train_steps WHERE step > ?", (self.step,))
            self.store.db.execute("DELETE FROM train_evals WHERE step > ?", (self.step,))
        entries = self.store.get_meta("exploitability")
        if entries:
            self.store.set_meta("exploitability", [e for e in entries if e["step"] <= self.step])
        self._say(f"resuming {self.run_dir} from step {self.step}")

    def _load_checkpoint_agent(self, checkpoint: Path) -> LLMAgent:
        """A frozen past policy: a second backend with the checkpoint's weights."""
        return LLMAgent(_load_backend(str(checkpoint), self.config), self.config.llm_config())

    def close(self) -> None:
        self.checkpoint_opponents.close()
        for factory in self.factories.values():
            factory.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        self.store.close()


# ---- helpers -------------------------------------------------------------------------------


def _load_backend(path: str, config: TrainConfig):
    from sparring.backends.hf import HFBackend, HFConfig

    return HFBackend(HFConfig(path=path, dtype=config.model_dtype, threads=config.threads, device=config.device),
                     name=POLICY_NAME)


def lora_target_check(model, targets: tuple[str, ...]) -> None:
    """Refuse LoRA targets the model has no linear module for, naming those it has."""
    linear = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
    missing = [t for t in targets if t not in linear]
    if missing:
        raise SparringError(
            f"LoRA target module(s) {', '.join(missing)} not in this model: set lora_targets to some of {', '.join(linear)}"
        )


def _add_lora(model, config: TrainConfig):
    from peft import LoraConfig, get_peft_model

    lora_target_check(model, config.lora_targets)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0,
                      target_modules=list(config.lora_targets), task_type="CAUSAL_LM")
    model = get_peft_model(model, lora)
    model.eval()  # no dropout anywhere: sampling and training see the same function
    return model


def _latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / CHECKPOINTS / "latest"
    if not pointer.exists():
        return None
    path = run_dir / CHECKPOINTS / pointer.read_text().strip()
    return path if (path / "state.pt").exists() else None


def eval_label(game: str, opponent: str, n_games: int) -> str:
    """The `opponent` of an evaluation row: the opponent in a one-game run (as runs
    always logged it), "GAME vs OPPONENT" when the run plays several games."""
    return opponent if n_games == 1 else f"{game} vs {opponent}"


@functools.cache  # the config, its default and the trainer all ask; each walk is a whole game tree
def _exploitability_game(games: tuple[str, ...]) -> str:
    """The one game of `games` whose exploitability can be measured (a small
    imperfect-information OpenSpiel game), or a SparringError saying why none or
    several do. One game, because the report keeps one exploitability per step."""
    from sparring.eval.exploitability import information_states
    from sparring.games.registry import make_game

    fitting, why = [], []
    for ref in games:
        try:
            information_states(make_game(ref))
            fitting.append(ref)
        except SparringError as exc:
            why.append(str(exc))
    if not fitting:
        raise SparringError(f"eval_exploitability=true but no game of this run fits: {why[0]}. "
                            "Set eval_exploitability=false")
    if len(fitting) > 1:
        raise SparringError(f"eval_exploitability=true measures one game per run, and {', '.join(fitting)} all fit: "
                            "set eval_exploitability=false, or keep one of them")
    return fitting[0]


def _exploitability_fits(games: tuple[str, ...]) -> bool:
    try:
        _exploitability_game(games)
    except SparringError:
        return False
    return True


def _flat(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric metrics with nested dicts flattened: {"mean_return/0": ..., "loss": ...}."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = value
    return out


def _check_compatible(stored: dict | None, config: dict, run_dir: Path) -> None:
    if stored is None:
        raise SparringError(f"{run_dir} has checkpoints but no training config: it was not written by sparring train")
    stored = {**{k: implied(stored) for k, implied in LATER_FIELDS.items()}, **stored}
    differ = sorted(k for k in set(stored) | set(config) if k not in RESUMABLE_CHANGES and stored.get(k) != config.get(k))
    if differ:
        shown = ", ".join(f"{k} ({stored.get(k)!r} there, {config.get(k)!r} now)" for k in differ)
        raise SparringError(
            f"cannot resume {run_dir}: its run used other settings for {shown}. Repeat the original settings "
            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change), or start a new run with out=DIR"
        )


def _create_log_tables(db: sqlite3.Connection) -> None:
    with db:
        db.executescript("""
        CREATE TABLE IF NOT EXISTS train_steps (
            step INTEGER PRIMARY KEY, metrics TEXT NOT NULL, logged_at REAL NOT NULL);
        CREATE TABLE IF NOT EXISTS train_evals (
            step INTEGER NOT NULL, opponent TEXT NOT NULL, metrics TEXT NOT NULL,
            PRIMARY KEY (step, opponent));
        """)


def read_train_log(run_dir: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(per-step metrics, evaluations) of a training run, for curves and reports."""
    store = RunStore(run_dir)
    try:
        _create_log_tables(store.db)
        steps = [json.loads(r[0]) for r in store.db.execute("SELECT metrics FROM train_steps ORDER BY step")]
        evals = [{"step": r[0], "opponent": r[1], **json.loads(r[2])}
                 for r in store.db.execute("SELECT step, opponent, metrics FROM train_evals ORDER BY step, opponent")]
    finally:
        store.close()
    return steps, evals
