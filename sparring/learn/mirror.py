"""Self-play over the whole game tree by magnetic mirror descent: the model's own
policy, improved against itself with exact action values, converging toward a Nash
equilibrium in small 2-player zero-sum games.

    sparring mirror --game kuhn_poker --out runs/m1

Sampled self-play learns from the matches it plays, and in poker a shared policy
chases its last version into a pure, exploitable habit. Here the policy plays
against itself in every branch of the game at once: each iteration reads the
model's exact policy pi_t at every information state (the softmax over the legal
answers' log-likelihoods, as it plays in scored mode), walks the tree with pi_t in
both seats to get each answer's action value q_t(s, a) (OpenSpiel's
`TreeWalkCalculator`: the expected return of playing a at s, given s is reached),
and moves the model toward the magnetic mirror descent step (Sokota et al. 2023,
"A Unifying Approach to Reinforcement Learning and Search in Games", ICLR; the
behavioural form of their eq. 3 with an entropy magnet):

    target(s) = argmax_p  eta <p, q_t(s)> - eta alpha KL(p || rho(s)) - KL(p || pi_t(s))
              ∝ (pi_t(s) rho(s)^(eta alpha) exp(eta q_t(s)))^(1 / (1 + eta alpha))

with step size eta, magnet coefficient alpha and magnet rho (uniform; with
`magnet_every` the magnet moves to the current policy, which anneals the
regularisation away). MMD converges to the alpha-regularised equilibrium (a quantal
response equilibrium, within a few hundredths of Nash in Kuhn poker at the default
alpha) and, with a moving magnet, toward Nash itself. The model follows the target
by gradient steps on the squared gap between its log-probabilities and the
target's (`logit_gap`), with an AdamW optimizer that lives across iterations; it is never replaced by the table, so
what is measured is what the model plays.

Every iteration's exploitability (exact, from the model's log-probabilities) is
stored; RUN_DIR/policy is the final adapter, an agent (`--players RUN_DIR/policy`),
measured again as users load it. A run killed at any moment resumes from its last
checkpoint and gives the same iterations as an unbroken run.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from open_spiel.python import policy as os_policy
from open_spiel.python.algorithms.action_value import TreeWalkCalculator

from sparring.agents.llm import LLMAgent, LLMConfig
from sparring.backends.embedded import embedded_model_dir
from sparring.errors import SparringError
from sparring.eval.exploitability import exploitability_report
from sparring.games.registry import make_game
from sparring.learn.checkpoint import (
    check_stored_settings,
    latest_checkpoint,
    load_checkpoint,
    loaded_policy,
    save_checkpoint,
    write_policy,
)
from sparring.learn.infostates import info_state_samples, kl_to_target
from sparring.learn.loss import option_log_policies
from sparring.learn.policy import adapter_dtype, add_lora, load_backend
from sparring.learn.population.metagame import two_player_zero_sum
from sparring.records import ExploitabilityEntry
from sparring.store import RunStore

POLICY_DIR = "policy"
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class MirrorConfig:
    game: str = "kuhn_poker"
    """A small 2-player zero-sum imperfect-information game (kuhn_poker, leduc_poker)."""
    iterations: int = 100
    """Mirror descent iterations; each reads the policy, walks the tree and updates the model."""
    step_size: float = 0.5
    """eta: how far one iteration moves toward the action values (smaller for larger payoffs)."""
    magnet_coef: float = 0.2
    """alpha: the pull toward the magnet; the equilibrium reached is regularised by it."""
    magnet_every: int = 0
    """Move the magnet to the current policy every this many iterations; 0 keeps it uniform."""
    fit_steps: int = 1
    """Gradient steps toward each iteration's target."""
    lr: float = 1e-3
    """AdamW learning rate of the LoRA adapter."""
    temperature: float = 1.0
    """Temperature of the scored policy: softmax of the answers' log-likelihoods / T."""
    lora_rank: int = 8
    model: str = ""
    """Local model directory; empty means the embedded SmolLM2-135M."""
    dtype: str = "auto"
    """Model weights: auto (bfloat16 where the CPU has bfloat16 arithmetic, else float32), float32 or bfloat16."""
    chunk: int = 32
    """Information states per forward pass (memory against speed; the result is the same)."""
    checkpoint_every: int = 5
    time_budget_s: float = 0.0
    """Stop after the iteration that passes this many seconds; 0 means no limit."""
    seed: int = 0
    out: str = ""
    """Run directory of a new run."""
    resume: str = ""
    """Run directory of a run to continue."""

    def __post_init__(self):
        for name, value, low in (("iterations", self.iterations, 1), ("fit_steps", self.fit_steps, 1),
                                 ("lora_rank", self.lora_rank, 1), ("chunk", self.chunk, 1),
                                 ("checkpoint_every", self.checkpoint_every, 1), ("magnet_every", self.magnet_every, 0),
                                 ("time_budget_s", self.time_budget_s, 0), ("magnet_coef", self.magnet_coef, 0)):
            if not value >= low:
                raise SparringError(f"{name} must be >= {low}, got {value}")
        for name, value in (("step_size", self.step_size), ("lr", self.lr), ("temperature", self.temperature)):
            if not 0 < value < float("inf"):
                raise SparringError(f"{name} must be a positive number, got {value}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise SparringError(f"dtype '{self.dtype}' unknown: use auto, float32 or bfloat16")
        if not self.out and not self.resume:
            raise SparringError("no run directory: set out=DIR for a new run or resume=DIR to continue one")
        if self.out and self.resume and Path(self.out) != Path(self.resume):
            raise SparringError(f"out={self.out} and resume={self.resume} differ: give only resume=DIR to continue a run")

    @property
    def model_dtype(self) -> str:
        return adapter_dtype() if self.dtype == "auto" else self.dtype

    def to_dict(self) -> dict[str, Any]:
        """The settings that decide the run's numbers (stored; a resume must match them)."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in ("out", "resume", "time_budget_s", "iterations", "checkpoint_every", "chunk")}


def mmd_target(policy: np.ndarray, q: np.ndarray, magnet: np.ndarray, legal: np.ndarray,
               step_size: float, magnet_coef: float) -> np.ndarray:
    """The magnetic mirror descent step at every information state (rows): the
    maximiser of eta <p, q> - eta alpha KL(p || magnet) - KL(p || policy) over
    distributions p on the legal actions, in closed form (see the module docstring).
    Arrays are [states, actions]; `legal` is 1 on legal actions."""
    tiny = np.finfo(np.float64).tiny
    eta, alpha = step_size, magnet_coef
    logits = (np.log(np.maximum(policy, tiny)) + eta * alpha * np.log(np.maximum(magnet, tiny)) + eta * q) / (1 + eta * alpha)
    logits = np.where(legal > 0, logits, -np.inf)
    target = np.exp(logits - logits.max(axis=1, keepdims=True))
    return target / target.sum(axis=1, keepdims=True)


def action_values(calculator: TreeWalkCalculator, policy: os_policy.TabularPolicy) -> np.ndarray:
    """q[s, a]: the expected return to the player at s of playing a there, given s is
    reached, when `policy` plays both seats; rows in `policy`'s order."""
    return np.asarray(calculator([policy, policy], policy).action_values, dtype=np.float64)


def logit_gap(target: torch.Tensor, log_pi: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of log pi and log target over a state's answers, each
    centred on its mean (softmax logits are defined up to a constant). The MMD step is
    a step in log space, so the model follows it there: a KL loss barely sees a gap
    of 1e-8 against 1e-7 on a nearly certain answer, and the policy stays stuck at a
    pure strategy the step is slowly leaving."""
    gap = log_pi - torch.log(target.clamp_min(1e-30))  # 1e-30: an answer the target all but rules out
    return ((gap - gap.mean()) ** 2).mean()


def run_mirror(config: MirrorConfig, console=None) -> Path:
    """Run (or continue) mirror descent self-play and return the run directory."""
    run = MirrorRun(config, console)
    try:
        run.run()
    finally:
        run.close()
    return run.run_dir


class MirrorRun:
    def __init__(self, config: MirrorConfig, console=None):
        self.config, self.console = config, console
        self.game = make_game(config.game)
        self.os_game = two_player_zero_sum(self.game)  # refuses, with the reason, before any compute
        self.run_dir = Path(config.resume or config.out)
        self.store = RunStore(self.run_dir, create=not config.resume)
        check_stored_settings(self.store.get_meta("mirror_config"), config.to_dict(), self.run_dir,
                              resuming=bool(config.resume), kind="mirror")
        self.store.set_meta("mirror_config", config.to_dict())
        torch.manual_seed(config.seed)
        self.options = LLMConfig(mode="scored", temperature=config.temperature)
        self.backend = load_backend(config.model or str(embedded_model_dir()), config.model_dtype, "cpu", POLICY_DIR)
        self.model = self.backend.model = add_lora(self.backend.model, r=config.lora_rank, alpha=2 * config.lora_rank,
                                                   targets=LORA_TARGETS)
        states = info_state_samples(self.game, LLMAgent(self.backend, self.options, name=POLICY_DIR))
        self.samples = [sample for _, sample in states]
        self.legal = [info.legal for info, _ in states]
        self.policy = os_policy.TabularPolicy(self.os_game)
        self.rows = [self.policy.state_lookup[info.key] for info, _ in states]
        self.calculator = TreeWalkCalculator(self.os_game)
        self.magnet = self.policy.action_probability_array.copy()  # uniform over the legal actions
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
        self.iteration, self.seconds = 0, 0.0
        self._restore()

    def _restore(self) -> None:
        """Continue from the last checkpoint, forgetting what was logged after it."""
        checkpoint = latest_checkpoint(self.run_dir)
        if checkpoint is None:
            return
        state = load_checkpoint(checkpoint, self.model, True, self.config.model_dtype, "cpu")
        self.optimizer.load_state_dict(state["optimizer"])
        self.magnet, self.iteration, self.seconds = state["magnet"], state["iteration"], state["seconds"]
        self.store.rewind(self.iteration - 1, next_match=0)
        self._say(f"resuming {self.run_dir} at iteration {self.iteration}")

    def run(self) -> None:
        c = self.config
        while self.iteration < c.iterations and not (c.time_budget_s and self.seconds > c.time_budget_s):
            self.step()
            if self.iteration % c.checkpoint_every == 0:
                self._checkpoint()
        self._checkpoint()
        self._finish()

    def step(self) -> None:
        """One iteration: read pi_t, its exploitability and action values, the MMD
        target, and `fit_steps` gradient steps of the model toward it (`logit_gap`)."""
        c, start = self.config, time.perf_counter()
        log_pis, kept = self._read()
        probs = self.policy.action_probability_array
        for row, legal, log_pi in zip(self.rows, self.legal, log_pis):
            probs[row] = 0.0
            probs[row, legal] = np.exp(log_pi.numpy().astype(np.float64))
        probs /= probs.sum(axis=1, keepdims=True)  # float32 softmax rows, summed in float64
        report = exploitability_report(self.game, self.policy, resamples=0)
        target = mmd_target(probs, action_values(self.calculator, self.policy), self.magnet,
                            self.policy.legal_actions_mask, c.step_size, c.magnet_coef)
        targets = [torch.tensor(target[row, legal], dtype=torch.float32) for row, legal in zip(self.rows, self.legal)]
        shift = float(np.mean([kl_to_target(t, lp) for t, lp in zip(targets, log_pis)]))
        gaps = self._fit(targets, kept)
        if c.magnet_every and (self.iteration + 1) % c.magnet_every == 0:
            self.magnet = probs.copy()
        elapsed = time.perf_counter() - start
        self.seconds += elapsed
        self.store.add_exploitability(ExploitabilityEntry(
            step=self.iteration, exploitability=report.exploitability, nash_conv=report.nash_conv, mode="exact",
            game=self.game.spec.ref, agent=POLICY_DIR))
        self.store.write_train_step(self.iteration, {
            "step": self.iteration, "exploitability": report.exploitability, "nash_conv": report.nash_conv,
            "target_kl": shift, "logit_gaps": gaps, "seconds": self.seconds, "iteration_s": elapsed})
        self._say(f"iteration {self.iteration}: exploitability {report.exploitability:.4f}, "
                  f"KL(target || policy) {shift:.4f}, squared log gap {' -> '.join(f'{g:.3f}' for g in gaps)}, "
                  f"{self.seconds:.0f} s")
        self.iteration += 1

    def _read(self) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
        """pi_t's log-probabilities at every information state (detached), and the
        same with their graph when every state fits one pass (the first fit step
        then reuses it instead of running the model again)."""
        if len(self.samples) <= self.config.chunk:
            log_pis = self._log_policies(self.samples)
            return [lp.detach() for lp in log_pis], log_pis
        with torch.no_grad():
            return [lp for chunk in self._chunks() for lp in self._log_policies(chunk)], None

    def _fit(self, targets: list[torch.Tensor], kept: list[torch.Tensor] | None) -> list[float]:
        """`fit_steps` AdamW steps on the mean over information states of
        `logit_gap(target, pi)`; returns that mean before each step."""
        n, gaps = len(self.samples), []
        for k in range(self.config.fit_steps):
            self.optimizer.zero_grad(set_to_none=True)
            gap = 0.0
            for chunk, chunk_targets in zip(self._chunks(), self._chunks(targets)):
                log_pis = kept if k == 0 and kept is not None else self._log_policies(chunk)
                loss = torch.stack([logit_gap(t, lp) for t, lp in zip(chunk_targets, log_pis)]).sum() / n
                loss.backward()
                gap += float(loss.detach())
            gaps.append(gap)
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.backend.weights_version = f"iteration-{self.iteration + 1}"
        return gaps

    def _chunks(self, items: list | None = None) -> list[list]:
        """`items` (the samples, by default) in runs of `chunk`, one forward pass each."""
        items = self.samples if items is None else items
        return [items[i:i + self.config.chunk] for i in range(0, len(items), self.config.chunk)]

    def _log_policies(self, samples) -> list[torch.Tensor]:
        return option_log_policies(self.model, samples, self.backend.pad_id, "cpu")

    def _checkpoint(self) -> None:
        state = {"optimizer": self.optimizer.state_dict(), "magnet": self.magnet, "iteration": self.iteration,
                 "seconds": self.seconds}
        save_checkpoint(self.run_dir, self.iteration, self.model, None, state, keep=set(),
                        agent_options=dataclasses.asdict(self.options))

    def _finish(self) -> None:
        """RUN_DIR/policy: the final adapter as an agent, measured as users load it."""
        folder = self.run_dir / POLICY_DIR
        write_policy(folder, self.model, dataclasses.asdict(self.options))
        measured = loaded_policy(self.game, folder)
        report = exploitability_report(self.game, measured, resamples=0)
        self.store.add_exploitability(report.entry(self.iteration, checkpoint=POLICY_DIR))
        self._say(f"the policy after {self.iteration} iterations, as loaded from {folder}: "
                  f"exploitability {report.exploitability:.4f}")

    def close(self) -> None:
        self.backend.close()
        self.store.close()

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)

