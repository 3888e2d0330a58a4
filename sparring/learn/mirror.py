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
and moves the model onto the magnetic mirror descent step (Sokota et al. 2023,
"A Unifying Approach to Reinforcement Learning and Search in Games", ICLR; the
behavioural form of their eq. 3 with an entropy magnet):

    target(s) = argmax_p  eta <p, q_t(s)> - eta alpha KL(p || rho(s)) - KL(p || pi_t(s))
              ∝ (pi_t(s) rho(s)^(eta alpha) exp(eta q_t(s)))^(1 / (1 + eta alpha))

with step size eta, magnet coefficient alpha and magnet rho (uniform at first;
every `magnet_every` iterations it moves to the current policy, which anneals the
regularisation away). With a fixed magnet MMD converges to the alpha-regularised
equilibrium (a quantal response equilibrium, 0.11 from Nash in Kuhn poker at
alpha 0.5); with the moving magnet, toward Nash itself. The target gives every
answer at least `floor` (1e-3): unfloored, dominated answers' log-probabilities
fall without end (70 nats below the best answer's in 60 tabular iterations), which
the model would chase with no effect on play. The defaults (eta 2, alpha 0.5,
magnet moved every 5, floor 1e-3) take the tabular iteration in Kuhn from four
random near-pure starts below 0.07 exploitability in 10 iterations and below
0.007 in 40 (`bench/mirror_tabular.py`). The model follows the target
in log space, closing the gap between its log-probabilities and the target's at
every state (`sparring.learn.fit`): by damped Gauss-Newton steps of the adapter
(`fit=gauss_newton`, which lands on the target in a step or two), or by AdamW steps
(`fit=adam`, for games too large for a Jacobian). It is never replaced by the
table, so what is measured is what the model plays.

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
from sparring.backends.hf import native_dtype
from sparring.errors import SparringError
from sparring.eval.exploitability import exploitability_report, information_states
from sparring.games.registry import make_game
from sparring.learn.checkpoint import (
    check_stored_settings,
    latest_checkpoint,
    load_checkpoint,
    loaded_policy,
    save_checkpoint,
    write_policy,
)
from sparring.learn.fit import MAX_RESIDUALS, LevenbergMarquardt, log_gap_residuals, squared_gap, trainable
from sparring.learn.infostates import info_state_samples, kl_to_target
from sparring.learn.loss import option_log_policies
from sparring.learn.policy import add_lora, load_backend
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
    step_size: float = 2.0
    """eta: how far one iteration moves toward the action values (smaller for larger payoffs)."""
    magnet_coef: float = 0.5
    """alpha: the pull toward the magnet; the equilibrium reached is regularised by it."""
    magnet_every: int = 5
    """Move the magnet to the current policy every this many iterations; 0 keeps it uniform."""
    fit: str = "gauss_newton"
    """How the model follows each target: gauss_newton (damped Gauss-Newton steps of the adapter)
    or adam (AdamW steps at lr; for games with more than 512 answer gaps to fit)."""
    fit_steps: int = 2
    """Most fit steps toward each iteration's target."""
    fit_tolerance: float = 0.1
    """Stop fitting an iteration's target once the squared log gap is below this share of its value before
    the fit (a share, not a level: near equilibrium the steps are small, and every one must be taken)."""
    floor: float = 1e-3
    """The least probability the target gives an answer (see the module docstring)."""
    lr: float = 1e-3
    """AdamW learning rate of the LoRA adapter (fit=adam)."""
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
        if not 0 <= self.floor < 0.5 or not 0 <= self.fit_tolerance <= 1:
            raise SparringError(f"floor must be in [0, 0.5) and fit_tolerance in [0, 1], "
                                f"got {self.floor} and {self.fit_tolerance}")
        for name, value in (("step_size", self.step_size), ("lr", self.lr), ("temperature", self.temperature)):
            if not 0 < value < float("inf"):
                raise SparringError(f"{name} must be a positive number, got {value}")
        if self.fit not in ("gauss_newton", "adam"):
            raise SparringError(f"fit '{self.fit}' unknown: use gauss_newton or adam")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise SparringError(f"dtype '{self.dtype}' unknown: use auto, float32 or bfloat16")
        if not self.out and not self.resume:
            raise SparringError("no run directory: set out=DIR for a new run or resume=DIR to continue one")
        if self.out and self.resume and Path(self.out) != Path(self.resume):
            raise SparringError(f"out={self.out} and resume={self.resume} differ: give only resume=DIR to continue a run")

    @property
    def model_dtype(self) -> str:
        return native_dtype() if self.dtype == "auto" else self.dtype

    def to_dict(self) -> dict[str, Any]:
        """The settings that decide the run's numbers (stored; a resume must match them)."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if k not in ("out", "resume", "time_budget_s", "iterations", "checkpoint_every", "chunk")}


# A run stored before these settings existed ran as they say: it resumes as it ran.
EARLIER_SETTINGS = {"fit": "adam", "fit_tolerance": 0.0, "floor": 0.0}


def stored_settings(stored: dict | None) -> dict | None:
    """A run's stored `mirror_config`, completed with `EARLIER_SETTINGS`."""
    return None if stored is None else {**EARLIER_SETTINGS, **stored}


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


def with_floor(target: np.ndarray, legal: np.ndarray, floor: float) -> np.ndarray:
    """`target` with every legal answer given at least about `floor`, renormalised."""
    floored = np.where(legal > 0, np.maximum(target, floor), 0.0)
    return floored / floored.sum(axis=1, keepdims=True)


def action_values(calculator: TreeWalkCalculator, policy: os_policy.TabularPolicy) -> np.ndarray:
    """q[s, a]: the expected return to the player at s of playing a there, given s is
    reached, when `policy` plays both seats; rows in `policy`'s order."""
    return np.asarray(calculator([policy, policy], policy).action_values, dtype=np.float64)


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
        if config.fit == "gauss_newton":
            residuals = sum(len(info.legal) - 1 for info in information_states(self.game))
            if residuals > MAX_RESIDUALS:
                raise SparringError(f"{config.game} has {residuals} answer gaps to fit; fit=gauss_newton keeps a "
                                    f"Jacobian row per gap (at most {MAX_RESIDUALS}): use --fit adam")
        self.run_dir = Path(config.resume or config.out)
        self.store = RunStore(self.run_dir, create=not config.resume)
        check_stored_settings(stored_settings(self.store.get_meta("mirror_config")), config.to_dict(), self.run_dir,
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
        self.optimizer = torch.optim.AdamW(trainable(self.model), lr=config.lr, weight_decay=0.0)
        self.newton = LevenbergMarquardt(self.model, self.backend.pad_id)
        self.latest: list[torch.Tensor] | None = None  # pi's log-policies under the current weights, once read
        self.iteration, self.seconds = 0, 0.0
        self._restore()

    def _restore(self) -> None:
        """Continue from the last checkpoint, forgetting what was logged after it."""
        checkpoint = latest_checkpoint(self.run_dir)
        if checkpoint is None:
            return
        state = load_checkpoint(checkpoint, self.model, True, self.config.model_dtype, "cpu")
        self.optimizer.load_state_dict(state["optimizer"])
        self.newton.damping = state.get("damping", self.newton.damping)
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
        target (floored), and the model's fit to it."""
        c, start = self.config, time.perf_counter()
        log_pis = self._read()
        probs = self.policy.action_probability_array
        for row, legal, log_pi in zip(self.rows, self.legal, log_pis):
            probs[row] = 0.0
            probs[row, legal] = np.exp(log_pi.numpy().astype(np.float64))
        probs /= probs.sum(axis=1, keepdims=True)  # float32 softmax rows, summed in float64
        report = exploitability_report(self.game, self.policy, resamples=0)
        mask = self.policy.legal_actions_mask
        target = with_floor(mmd_target(probs, action_values(self.calculator, self.policy), self.magnet, mask,
                                       c.step_size, c.magnet_coef), mask, c.floor)
        targets = [torch.tensor(target[row, legal], dtype=torch.float32) for row, legal in zip(self.rows, self.legal)]
        shift = float(np.mean([kl_to_target(t, lp) for t, lp in zip(targets, log_pis)]))
        gaps = self._fit(targets, log_pis)
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

    def _read(self) -> list[torch.Tensor]:
        """pi's log-probabilities at every information state (detached): those the
        last fit read under the current weights, else read now."""
        if self.latest is None:
            with torch.no_grad():
                self.latest = [lp for chunk in self._chunks() for lp in self._log_policies(chunk)]
        return self.latest

    def _fit(self, targets: list[torch.Tensor], log_pis: list[torch.Tensor]) -> list[float]:
        """Up to `fit_steps` steps toward the targets, until the squared gap
        (`fit.squared_gap`) is below `fit_tolerance` times its value before; returns
        it before the fit and after each step."""
        gaps = [squared_gap(log_pis, targets)]
        for _ in range(self.config.fit_steps):
            if gaps[-1] <= self.config.fit_tolerance * gaps[0] and len(gaps) > 1:
                break
            if self.config.fit == "gauss_newton":
                log_pis = self.newton.step(self.samples, targets, log_pis, self._reread)
            else:
                self._adam_step(targets)
                log_pis = self._reread()
            gaps.append(squared_gap(log_pis, targets))
        self.latest = log_pis
        self.backend.weights_version = f"iteration-{self.iteration + 1}"
        return gaps

    def _reread(self) -> list[torch.Tensor]:
        self.latest = None
        return self._read()

    def _adam_step(self, targets: list[torch.Tensor]) -> None:
        """One AdamW step on the mean over information states of the squared gap."""
        self.optimizer.zero_grad(set_to_none=True)
        for chunk, chunk_targets in zip(self._chunks(), self._chunks(targets)):
            loss = sum((log_gap_residuals(lp, t) ** 2).sum()
                       for t, lp in zip(chunk_targets, self._log_policies(chunk))) / len(self.samples)
            loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def _chunks(self, items: list | None = None) -> list[list]:
        """`items` (the samples, by default) in runs of `chunk`, one forward pass each."""
        items = self.samples if items is None else items
        return [items[i:i + self.config.chunk] for i in range(0, len(items), self.config.chunk)]

    def _log_policies(self, samples) -> list[torch.Tensor]:
        return option_log_policies(self.model, samples, self.backend.pad_id, "cpu")

    def _checkpoint(self) -> None:
        state = {"optimizer": self.optimizer.state_dict(), "damping": self.newton.damping, "magnet": self.magnet,
                 "iteration": self.iteration, "seconds": self.seconds}
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

