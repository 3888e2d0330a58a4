"""Self-play reinforcement learning for a local model (SPIRAL, arXiv 2506.24119):
the loop.

One step: play `games_per_step` games (`rollout`), turn each of the policy's turns
into a sample whose reward is the final return of the player who took it, compute
role-conditioned advantages (`advantages`), and take `ppo_epochs` policy-gradient
steps over the completion tokens that were sampled (`loss`: the recorded ids, never
re-tokenised text). Every `eval_every` steps the policy plays fixed references in
each game and, in a small imperfect-information game such as Kuhn poker, its
exploitability is measured exactly; every `checkpoint_every` steps the whole
trainer state is saved atomically (`checkpoint`), and `resume=RUN_DIR` continues
from the last checkpoint as if never stopped. Everything logged goes to the run
store.

Magnetic mirror descent (Sokota et al., "A Unified Approach to Reinforcement
Learning, Quantal Response Equilibria, and Two-Player Zero-Sum Games", ICLR 2023),
when `magnet_coef` > 0: the loss adds alpha * KL(pi || magnet), the magnet being a
frozen copy of the trainable weights (the adapter, or every weight) taken at step 0
and every `magnet_every` steps (see `TrainConfig.magnet_every` for why a replaced
magnet rather than the paper's geometric mixture). Its log-probs are computed by
swapping its weights into the model, so it costs no second model; it is saved in
every checkpoint.

The backend learns of new weights by their version: the trainer names the weights
after the step that made them (`step-N`), the backend drops keys and values cached
under another version, and every turn records the version that played it. With
`generation="vllm"` the games are sampled by a vLLM engine and the update runs in
torch: after each update the adapter goes to the engine as a new LoRA version, and
every step logs `sampler_gap`, the mean |log-prob difference| per sampled token
between the sampler and the trainer before the update (a mismatch between the two
is a known way RL stacks fail silently). With `rollout_workers`, Ray workers play
the games on replicas of the policy, each sent the adapter after every update.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from sparring.agents.llm import LLMAgent
from sparring.agents.registry import AgentFactory
from sparring.arena.match import InvalidMoveRule
from sparring.arena.workers import ByReference, TrainedAdapter, Workers
from sparring.backends.embedded import embedded_model_dir
from sparring.errors import SparringError
from sparring.games.registry import make_game, split_version
from sparring.learn.advantages import expert_advantages, grpo_advantages, rae_advantages, rloo_advantages
from sparring.learn.checkpoint import checkpoint_name, latest_checkpoint, load_checkpoint, save_checkpoint
from sparring.learn.config import TrainConfig, check_resumable
from sparring.learn.evaluation import eval_label, play_eval, summarize_eval
from sparring.learn.loss import answer_kl, chosen_logprobs, option_log_policies, policy_loss, sample_logprobs
from sparring.learn.opponents import CheckpointOpponents, OpponentMix
from sparring.learn.policy import add_lora, load_backend
from sparring.learn.rollout import Rollouts, Sample, samples_from
from sparring.learn.step_log import flat_metrics, step_line
from sparring.records import MatchResult
from sparring.store import RunStore

POLICY_NAME = "policy"
TENSORBOARD_DIR = "tensorboard"


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
        self.console = console
        self.run_dir = Path(config.resume or config.out)
        latest = latest_checkpoint(self.run_dir)
        if config.resume and latest is None:
            raise SparringError(
                f"nothing to resume in {self.run_dir}: it has no training checkpoint. Start a new run with out=DIR"
            )
        if not config.resume and latest is not None:
            raise SparringError(
                f"{self.run_dir} already holds a training run: continue it with resume={self.run_dir}, or choose another out"
            )
        self.exploitability_game = measurable_game(config.game_refs, config.eval_exploitability)
        self.store = RunStore(self.run_dir, create=True)
        self.store.claim("train")  # before any work: a play or tournament run refuses
        if latest is not None:
            check_resumable(self.store.get_meta("train_config"), config.to_dict(), self.run_dir)
        self.config = config
        self.games = {ref: make_game(ref) for ref in config.game_refs}
        self.factories = {ref: AgentFactory(game) for ref, game in self.games.items()}
        self.game = self.games[config.game_refs[0]]  # the first game; the one game of a one-game run
        self.factory = self.factories[config.game_refs[0]]
        self.rule = InvalidMoveRule(retries=config.invalid_retries, then="forfeit",
                                    penalty=config.invalid_penalty, opponent_reward=config.invalid_opponent_reward)
        torch.manual_seed(config.seed)  # adapter initialisation
        self.base_model = config.model or str(embedded_model_dir())
        self.backend = load_backend(self.base_model, config.model_dtype, config.device, POLICY_NAME)
        self.model = self.backend.model
        if config.lora:
            self.model = add_lora(self.model, config.lora_r, config.lora_alpha, config.lora_targets)
        else:
            for p in self.model.parameters():
                p.requires_grad_(True)
        self.backend.model = self.model  # the arena samples from the current policy
        self.reference = None
        if config.kl_coef > 0 and not config.lora:
            self.reference = copy.deepcopy(self.model).requires_grad_(False)  # frozen initial weights
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.magnet: dict[str, torch.Tensor] | None = None  # MMD's magnet: trainable weights by name
        self.optimizer = torch.optim.AdamW(self.trainable, lr=config.lr, weight_decay=0.0)
        self._players(config)
        self.mix = OpponentMix(config.opponents, config.weights, config.pool_size, config.pool_sampling)
        self.checkpoint_opponents = CheckpointOpponents(self._load_checkpoint_agent, self.run_dir)
        self.rollouts = Rollouts(self.games, self.factories, self.policy, self.mix, self.checkpoint_opponents,
                                 self.rule, config.game_probabilities, config.seed, self.workers)
        self.rng = random.Random(f"train:{config.seed}")
        self.baselines: dict[tuple[str, int], float] = {}
        self.step = 0
        self.next_match = 0
        if latest is not None:
            self._load(latest)
        self.sync_weights()
        self.tensorboard = None
        if config.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a resumed run replays (logged after its checkpoint)
            self.tensorboard = SummaryWriter(str(self.run_dir / TENSORBOARD_DIR), purge_step=self.step + 1)
        self.store.set_meta("kind", "train")
        self.store.set_meta("train_config", config.to_dict())

    # ---- one step ----------------------------------------------------------------------

    def run(self) -> None:
        if self.step == 0 and self.config.eval_every:
            self.evaluate()  # the starting point, so every curve has a "before"
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
        if self.step != last_saved or latest_checkpoint(self.run_dir) is None:
            if self.config.eval_every and self.step % self.config.eval_every:
                self.evaluate()
            self.save()

    def train_step(self) -> dict[str, Any]:
        config = self.config
        t0 = time.perf_counter()
        write = self.store.write_match if config.store_turns else None
        results = self.rollouts.play(config.games_per_step, self.rng, self.next_match, write)
        self.next_match += len(results)
        t1 = time.perf_counter()
        samples = samples_from(results, POLICY_NAME)
        returns, roles = [s.reward for s in samples], [s.role for s in samples]
        if config.estimator == "rae":
            advantages, self.baselines = rae_advantages(returns, roles, self.baselines, config.rae_decay)
        elif config.estimator == "expert":
            advantages, self.baselines = expert_advantages(
                returns, [s.outcome for s in samples], roles, [s.valid for s in samples], config.expert_keep,
                self.baselines, config.rae_decay)
        elif config.estimator == "grpo":
            advantages = grpo_advantages(returns, roles)
        else:
            advantages = rloo_advantages(returns, roles)
        for sample, advantage in zip(samples, advantages):
            sample.advantage = advantage
        # A zero advantage gives no policy gradient: drop the turn rather than spend a
        # pass on it, unless a KL term is on (its gradient comes from every turn).
        anchored = config.kl_coef > 0 or config.magnet_coef > 0
        kept = [s for s in samples if anchored or abs(s.advantage) > 1e-9]
        if config.magnet_coef > 0 and (self.magnet is None or self.step % config.magnet_every == 0):
            self.magnet = self._trainable_weights()  # the policy that played this step's games
        update = self.update(kept, len(samples))
        self.step += 1
        if config.store_turns:  # the replay shows what each turn was taught
            self.store.write_turn_signals(self.step, [(*s.turn, s.reward, s.advantage) for s in samples])
        t2 = time.perf_counter()
        if self.sync_weights():
            update["sync_s"] = time.perf_counter() - t2
        return self._step_metrics(results, samples, kept, update, t1 - t0, t2 - t1)

    def sync_weights(self) -> bool:
        """Stamp the weights with the step that made them (`step-N`): the hf backend
        drops keys and values cached under another version, and every turn records the
        version that played it. A vLLM sampler gets the adapter as a new LoRA of that
        version (the engine never serves an older copy under a reused id); rollout
        workers get its files through Ray's object store. True when weights were sent."""
        version = checkpoint_name(self.step)
        self.backend.weights_version = version
        if self.sampler is self.backend and self.workers is None:
            return False
        with tempfile.TemporaryDirectory(prefix="sparring-sync-") as folder:
            self.model.save_pretrained(folder)
            if self.workers is not None:
                files = {path.name: path.read_bytes() for path in Path(folder).iterdir() if path.is_file()}
                config = self.config
                self.workers.push(TrainedAdapter(POLICY_NAME, self.base_model,
                                                 dataclasses.asdict(config.llm_config()), config.model_dtype, files,
                                                 version))
            else:
                self.sampler.load_adapter(folder, version)
        return True

    def _players(self, config: TrainConfig) -> None:
        """What plays the games: the policy on its sampler (the trained model itself, or
        a vLLM engine), here or on Ray workers that hold replicas of it."""
        self.sampler = self.backend if config.generation == "hf" else self._vllm_sampler()
        self.policy = LLMAgent(self.sampler, config.llm_config(), name=POLICY_NAME)
        self.workers = None
        if config.rollout_workers:
            self.workers = Workers(config.rollout_workers, config.ray_address or None, say=self._say)

    def _vllm_sampler(self):
        """A vLLM engine on the same base model, for the games; the update stays in torch."""
        from sparring.backends.vllm_engine import VLLMBackend, VLLMConfig

        config = self.config
        return VLLMBackend(VLLMConfig(path=self.base_model, dtype=config.model_dtype), name=POLICY_NAME)

    def _step_metrics(self, results: list[MatchResult], samples: list[Sample], kept: list[Sample],
                      update: dict[str, float], generate_s: float, train_s: float) -> dict[str, Any]:
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
            "games_by_game": {g: sum(split_version(r.game)[0] == g for r in results) for g in self.config.game_refs},
            "samples": len(samples),
            "trained": len(kept),
            **update,
            "mean_return": {role: sum(v) / len(v) for role, v in sorted(by_role.items())},
            "mean_return_by_game": {role: sum(v) / len(v) for role, v in sorted(by_game_role.items())},
            "pool_win_rate": {Path(c).name: p for c, p in self.mix.win_rates().items()},
            "baselines": {f"{g}:{seat}": b for (g, seat), b in sorted(self.baselines.items())},
            "invalid_rate": sum(not t.valid for t in policy_turns) / max(1, len(policy_turns)),
            "completion_len": sum(len(s.completion_ids) for s in samples) / max(1, len(samples)),
            # -mean log-prob of the sampled tokens estimates the per-token entropy.
            "entropy": -sum(tokens) / len(tokens) if tokens else math.nan,
            "lr": self.optimizer.param_groups[0]["lr"],
            "generate_s": generate_s,
            "train_s": train_s,
        }

    def update(self, samples: list[Sample], batch_size: int) -> dict[str, float]:
        """`ppo_epochs` optimizer steps over the samples, micro-batched; the loss is
        averaged over the whole batch (dropped zero-advantage turns included)."""
        config = self.config
        totals = dict.fromkeys(("loss", "kl", "magnet_kl", "approx_kl", "clip_frac", "grad_norm", "sampler_gap"), 0.0)
        if not samples:
            return totals
        ref_cache: dict[int, torch.Tensor] = {}
        magnet_cache: dict[int, Any] = {}  # the magnet holds still through a step's epochs
        for epoch_index in range(config.ppo_epochs):
            self.optimizer.zero_grad(set_to_none=True)
            epoch = dict.fromkeys(("loss", "kl", "magnet_kl", "approx_kl", "clip_frac"), 0.0)
            for start in range(0, len(samples), config.micro_batch):
                chunk = samples[start:start + config.micro_batch]
                ref, magnet = ref_cache.get(start), magnet_cache.get(start)
                if config.kl_coef > 0 and ref is None:
                    ref = ref_cache[start] = self._reference_logprobs(chunk)
                if config.magnet_coef > 0 and magnet is None:
                    magnet = magnet_cache[start] = self._magnet_logprobs(chunk)
                new, mask, magnet_terms = self._new_logprobs(chunk, magnet)
                loss, stats = policy_loss(new, mask, chunk, config.clip, ref, config.kl_coef,
                                          magnet_coef=config.magnet_coef, **magnet_terms)
                (loss / batch_size).backward()
                epoch["loss"] += float(loss.detach()) / batch_size
                for key in ("kl", "magnet_kl", "approx_kl", "clip_frac"):
                    epoch[key] += getattr(stats, key) / len(samples)
                if epoch_index == 0:  # before any update: what sampled the games against what trains
                    totals["sampler_gap"] += stats.gap / len(samples)
            norm = torch.nn.utils.clip_grad_norm_(self.trainable, config.max_grad_norm or math.inf)
            self.optimizer.step()
            for key in epoch:
                totals[key] += epoch[key] / config.ppo_epochs
            totals["grad_norm"] += float(norm) / config.ppo_epochs
        self.optimizer.zero_grad(set_to_none=True)
        return totals

    @torch.no_grad()
    def _reference_logprobs(self, chunk: list[Sample]) -> torch.Tensor:
        device = self.backend.config.device
        if self.config.lora:
            with self.model.disable_adapter():  # the base weights are the initial model
                return sample_logprobs(self.model, chunk, self.backend.pad_id, device)[0]
        return sample_logprobs(self.reference, chunk, self.backend.pad_id, device)[0]

    def _new_logprobs(self, chunk: list[Sample], magnet) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """The policy's log-probs for the loss (`sample_logprobs`), and the magnet's
        term of `policy_loss`: in scored mode the exact KL over each turn's answers
        from the same forward pass, else the magnet's log-probs of the sampled tokens."""
        pad_id, device = self.backend.pad_id, self.backend.config.device
        if isinstance(magnet, list):
            log_policies = option_log_policies(self.model, chunk, pad_id, device)
            return *chosen_logprobs(log_policies, chunk), {"magnet_kl": answer_kl(log_policies, magnet)}
        return *sample_logprobs(self.model, chunk, pad_id, device), {"magnet_logp": magnet}

    @torch.no_grad()
    def _magnet_logprobs(self, chunk: list[Sample]) -> torch.Tensor | list[torch.Tensor]:
        """Under the magnet's weights: log pi over each scored turn's answers ([K]
        each), or the log-probs of the sampled tokens ([B, C])."""
        pad_id, device = self.backend.pad_id, self.backend.config.device
        with self._magnet_weights():
            if chunk[0].options:
                return option_log_policies(self.model, chunk, pad_id, device)
            return sample_logprobs(self.model, chunk, pad_id, device)[0]

    def _trainable_weights(self) -> dict[str, torch.Tensor]:
        return {name: p.detach().clone() for name, p in self.model.named_parameters() if p.requires_grad}

    @contextlib.contextmanager
    def _magnet_weights(self):
        """The model with the magnet's weights in place of the trainable ones, by a
        swap of storages (no copy; the Parameter objects the optimizer holds stay),
        swapped back on exit."""
        parameters = dict(self.model.named_parameters())

        def swap() -> None:
            for name, stored in self.magnet.items():
                current = parameters[name].data
                parameters[name].data = stored
                self.magnet[name] = current

        swap()
        try:
            yield self.model
        finally:
            swap()

    # ---- evaluation and logging ----------------------------------------------------------

    def evaluate(self) -> dict[str, Any]:
        """Play every evaluation opponent in every game, and measure exploitability
        where it fits. Returns the summaries by label: the opponent in a one-game run,
        "GAME vs OPPONENT" in a multi-game run (the `opponent` of the train_evals row);
        the exploitability report, if any, under "exploitability"."""
        out: dict[str, Any] = {}
        games = self.config.game_refs
        for game in games:
            for ref in self.config.eval_opponents:
                label = eval_label(game, ref, len(games))
                opponent = ByReference(ref) if self.workers else self.factories[game].make(ref)
                results = play_eval(self.games[game], self.policy, opponent, self.config.eval_games,
                                    self.config.seed, self.rule, play=self.workers and self.workers.play)
                summary = {**summarize_eval(results, POLICY_NAME), "game": game, "against": ref}
                out[label] = summary
                self.store.write_train_eval(self.step, label, summary)
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
        """The policy's exploitability now, recorded in the run store for reports:
        exact where its answers carry action log-probs (scored mode), else from
        `exploitability_samples` answers per information state with a bootstrap error."""
        from sparring.eval.exploitability import agent_policy, exploitability_report

        game = self.games[self.exploitability_game]
        policy = agent_policy(game, self.policy, samples=self.config.exploitability_samples, seed=self.config.seed)
        report = exploitability_report(game, policy, seed=self.config.seed)
        self.store.add_exploitability(report.entry(self.step))
        return report

    def _log_step(self, m: dict[str, Any]) -> None:
        self.store.write_train_step(m["step"], m)
        self._scalars({f"train/{k}": v for k, v in flat_metrics(m).items() if k != "step"})
        self._say(step_line(m, one_game=len(self.config.game_refs) == 1,
                            kl=self.config.kl_coef > 0, magnet=self.config.magnet_coef > 0))

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
        """Save a checkpoint, add it to the opponent pool, and drop checkpoints that
        are neither in the pool nor the latest."""
        relative = f"checkpoints/{checkpoint_name(self.step)}"
        self.mix.add_checkpoint(relative)
        state = {
            "step": self.step,
            "next_match": self.next_match,
            "optimizer": self.optimizer.state_dict(),
            "baselines": [[g, seat, b] for (g, seat), b in self.baselines.items()],
            "pool": self.mix.state_dict(),
            "rng": self.rng.getstate(),
            "magnet": self.magnet,
        }
        tokenizer = None if self.config.lora else self.backend.tokenizer
        final = save_checkpoint(self.run_dir, self.step, self.model, tokenizer, state,
                                keep={Path(p).name for p in self.mix.checkpoints},
                                agent_options=dataclasses.asdict(self.config.llm_config()))
        self._say(f"  checkpoint {final}")
        return final

    def _load(self, checkpoint: Path) -> None:
        config = self.config
        state = load_checkpoint(checkpoint, self.model, config.lora, config.model_dtype, self.backend.config.device)
        self.optimizer.load_state_dict(state["optimizer"])
        self.baselines = {(g, seat): b for g, seat, b in state["baselines"]}
        self.mix.load_state_dict(state["pool"])
        self.rng.setstate(state["rng"])
        self.magnet = state.get("magnet")  # absent from checkpoints of runs without a magnet
        self.step, self.next_match = state["step"], state["next_match"]
        self.store.rewind(self.step, self.next_match)  # what was logged after the checkpoint is replayed
        self._say(f"resuming {self.run_dir} from step {self.step}")

    def _load_checkpoint_agent(self, checkpoint: Path) -> LLMAgent:
        """A frozen past policy: a second backend with the checkpoint's weights."""
        backend = load_backend(str(checkpoint), self.config.model_dtype, self.config.device, POLICY_NAME)
        return LLMAgent(backend, self.config.llm_config())

    def close(self) -> None:
        if self.sampler is not self.backend:
            self.sampler.close()
        if self.workers is not None:
            self.workers.close()
        self.checkpoint_opponents.close()
        for factory in self.factories.values():
            factory.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        self.store.close()


def measurable_game(games: tuple[str, ...], wanted: bool | None) -> str | None:
    """The one game of `games` whose exploitability evaluations measure, or None.

    wanted=None: Kuhn poker's when it is played and no other game fits (it has 12
    information states, so it is cheap); True: the one game that fits, refusing with
    the reason when none or several do; False: None. A game fits when it is a small
    imperfect-information OpenSpiel game (each check walks its tree)."""
    from sparring.eval.exploitability import information_states

    if wanted is False:
        return None
    fitting, why = [], []
    for ref in games:
        try:
            information_states(make_game(ref))
            fitting.append(ref)
        except SparringError as exc:
            why.append(str(exc))
    if wanted is None:
        return fitting[0] if len(fitting) == 1 and make_game(fitting[0]).spec.id == "kuhn_poker" else None
    if not fitting:
        raise SparringError(f"eval_exploitability=true but no game of this run fits: {why[0]}. "
                            "Set eval_exploitability=false")
    if len(fitting) > 1:
        raise SparringError(f"eval_exploitability=true measures one game per run, and {', '.join(fitting)} all fit: "
                            "set eval_exploitability=false, or keep one of them")
    return fitting[0]
