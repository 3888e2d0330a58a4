"""A population self-play run (PSRO) of a language model, stored and resumable.

    sparring population --game kuhn_poker --iterations 8 --out runs/p1

The population starts with the base model, playing by scored choice (its exact
action distribution at every information state is known). Each iteration solves the
exact meta-game between the members, builds the mixture's behaviour policy, and
adds a new member that the oracle trains against that mixture:

- `rl` (default): the self-play trainer trains a new LoRA adapter of the base model
  against the mixture (the opponent plays the mixture's behaviour policy, which is
  realization-equivalent to drawing a member per match), then the adapter's exact
  policy is read off at every information state;
- `exact`: OpenSpiel's best response, a tabular member: the reference that shows
  the machinery converges.

At the end the run holds RUN_DIR/nash (the meta-Nash mixture: `policy.json`, its
behaviour policy, and `members.json`) and, with the rl oracle, RUN_DIR/distilled:
one adapter trained to play the mixture at every information state. Every member,
meta-game entry and solve is in the run store as it happens; a run killed at any
moment resumes from the last member (a member in training resumes from its last
checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sparring.agents.solvers import policy_json
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.learn.checkpoint import check_stored_settings
from sparring.learn.population.metagame import (
    MetaGame,
    from_table,
    to_table,
    two_player_zero_sum,
)
from sparring.learn.population.metasolvers import META_SOLVERS, meta_solver
from sparring.learn.population.oracles import exact_best_response
from sparring.learn.population.psro import solve_meta_game
from sparring.records import ExploitabilityEntry, PopulationIteration, PopulationMember
from sparring.store import RunStore

ORACLES = ("rl", "exact")
METHODS = ("psro",)
MEMBERS_DIR, MIXTURES_DIR, NASH_DIR, DISTILLED_DIR = "members", "mixtures", "nash", "distilled"


@dataclass(frozen=True)
class PopulationConfig:
    game: str = "kuhn_poker"
    """A small 2-player zero-sum imperfect-information game (kuhn_poker, leduc_poker)."""
    method: str = "psro"
    """psro: policy-space response oracles (Lanctot et al. 2017)."""
    iterations: int = 8
    """Members added to the first (the base model)."""
    solver: str = "nash"
    """Meta-solver: nash, alpha_rank, uniform (fictitious play) or prd."""
    oracle: str = "rl"
    """rl (a LoRA adapter trained against the mixture) or exact (tabular best response)."""
    steps: int = 20
    """rl oracle: training steps per new member."""
    games_per_step: int = 32
    """rl oracle: games per training step."""
    lr: float = 1e-3
    """rl oracle and distillation: learning rate."""
    temperature: float = 1.0
    """Temperature of the scored policy: softmax of the answers' log-likelihoods / T."""
    model: str = ""
    """Local model directory; empty means the embedded SmolLM2-135M."""
    distill_steps: int = 100
    """Most full passes over the information states when distilling the mixture (rl
    oracle); it stops early once every state's KL is below 1e-3."""
    time_budget_s: float = 0.0
    """Add no new member once the run has taken this long (then solve and distil);
    0 means no limit."""
    seed: int = 0
    out: str = ""
    """Run directory of a new run."""
    resume: str = ""
    """Run directory of a run to continue."""

    def __post_init__(self):
        if self.method not in METHODS:
            raise SparringError(f"method '{self.method}' unknown: use {', '.join(METHODS)}")
        if self.oracle not in ORACLES:
            raise SparringError(f"oracle '{self.oracle}' unknown: use rl (a trained adapter) or exact (tabular)")
        if self.solver not in META_SOLVERS:
            raise SparringError(f"meta-solver '{self.solver}' unknown: use one of {', '.join(META_SOLVERS)}")
        for name, value, low in (("iterations", self.iterations, 0), ("steps", self.steps, 1),
                                 ("games_per_step", self.games_per_step, 1), ("distill_steps", self.distill_steps, 0),
                                 ("time_budget_s", self.time_budget_s, 0)):
            if value < low:
                raise SparringError(f"{name} must be >= {low}, got {value}")
        if self.lr <= 0 or self.temperature <= 0:
            raise SparringError("lr and temperature must be > 0")
        if not self.out and not self.resume:
            raise SparringError("no run directory: set out=DIR for a new run or resume=DIR to continue one")
        if self.out and self.resume and Path(self.out) != Path(self.resume):
            raise SparringError(f"out={self.out} and resume={self.resume} differ: give only resume=DIR to continue a run")

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("out", "resume", "time_budget_s")}


def run_population(config: PopulationConfig, console=None) -> Path:
    """Run (or continue) a population and return its directory."""
    population = Population(config, console)
    try:
        population.run()
    finally:
        population.store.close()
    return population.run_dir


class Population:
    def __init__(self, config: PopulationConfig, console=None):
        self.config, self.console = config, console
        self.game = make_game(config.game)
        self.os_game = two_player_zero_sum(self.game)  # refuses, with the reason, before any compute
        self.run_dir = Path(config.resume or config.out)
        self.store = RunStore(self.run_dir, create=not config.resume)
        check_stored_settings(self.store.get_meta("population_config"), config.to_dict(), self.run_dir,
                              resuming=bool(config.resume), kind="population",
                              occupied=bool(self.store.finished_indices()))
        self.store.set_meta("kind", "population")
        self.store.set_meta("population_config", config.to_dict())
        self.solver = meta_solver(config.solver)
        self.meta_game = MetaGame(self.game)
        self.members = self.store.members()
        for member in self.members:  # the same members give the same exact meta-game
            self.meta_game.add(from_table(self.os_game, member.policy))
        self.started = time.perf_counter() - (self.store.population_iterations() or [_NO_TIME])[-1].seconds

    def run(self) -> None:
        if not self.members:
            self._add(self._initial())
        while len(self.members) <= self.config.iterations and not self._out_of_time():
            solved = self.solve()
            self._add(self._respond(solved))
        solved = self.solve()
        self._write_nash(solved)
        if self.config.oracle == "rl" and self.config.distill_steps:
            self._distill(solved)

    def _out_of_time(self) -> bool:
        budget = self.config.time_budget_s
        if budget and time.perf_counter() - self.started > budget:
            self._say(f"time budget of {budget:g} s used up with {len(self.members)} members")
            return True
        return False

    def solve(self) -> PopulationIteration:
        """The meta-strategy and the mixture's exact exploitability, recorded."""
        solution = solve_meta_game(self.game, self.meta_game, self.solver, len(self.members) - 1)
        self.mixture = solution.mixture
        solved = PopulationIteration(
            iteration=solution.iteration, meta_strategy=solution.meta_strategy,
            exploitability=solution.exploitability, seconds=time.perf_counter() - self.started,
        )
        self.store.add_population_iteration(solved)
        self._say(f"iteration {solved.iteration}: {len(self.members)} members, meta-strategy "
                  f"[{', '.join(f'{p:.2f}' for p in solved.meta_strategy)}], exploitability {solved.exploitability:.4f}")
        return solved

    # ---- members -------------------------------------------------------------------

    def _initial(self) -> PopulationMember:
        if self.config.oracle == "exact":
            from open_spiel.python import policy as os_policy

            return PopulationMember(0, "uniform", None, to_table(os_policy.TabularPolicy(self.os_game)))
        from sparring.agents.llm import LLMAgent, LLMConfig
        from sparring.backends.embedded import embedded_model_dir
        from sparring.learn.policy import adapter_dtype, load_backend

        backend = load_backend(self.config.model or str(embedded_model_dir()), adapter_dtype(), "cpu", "base")
        try:
            agent = LLMAgent(backend, LLMConfig(mode="scored", temperature=self.config.temperature), name="base")
            return PopulationMember(0, "base", None, _exact_table(self.game, agent))
        finally:
            backend.close()

    def _respond(self, solved: PopulationIteration) -> PopulationMember:
        k = len(self.members)
        if self.config.oracle == "exact":
            return PopulationMember(k, f"best-response-{k}", None, to_table(exact_best_response(self.game, self.mixture)))
        mixture_file = self.run_dir / MIXTURES_DIR / f"iteration-{solved.iteration}.json"
        _write_json(mixture_file, policy_json(to_table(self.mixture), game=self.game.spec.versioned_ref,
                                              meta_strategy=list(solved.meta_strategy)))
        return self._train_member(k, mixture_file)

    def _train_member(self, k: int, opponent_file: Path) -> PopulationMember:
        """The rl oracle: a new adapter trained by self-play RL against the mixture."""
        from sparring.learn.checkpoint import checkpoint_name, latest_checkpoint
        from sparring.learn.config import TrainConfig
        from sparring.learn.trainer import Trainer

        c = self.config
        member_dir = self.run_dir / MEMBERS_DIR / f"member-{k}"
        resume = latest_checkpoint(member_dir) is not None
        if not resume:
            shutil.rmtree(member_dir, ignore_errors=True)  # an attempt killed before its first checkpoint
        train = TrainConfig(
            game=c.game, model=c.model, mode="scored", temperature=c.temperature,
            opponents=(f"policy(path={opponent_file})",), steps=c.steps, games_per_step=c.games_per_step,
            lr=c.lr, eval_every=0, eval_exploitability=False, checkpoint_every=max(1, c.steps // 4),
            seed=c.seed + k, **({"resume": str(member_dir)} if resume else {"out": str(member_dir)}),
        )
        self._say(f"training member {k} against the mixture ({c.steps} steps)")
        trainer = Trainer(train, self.console)
        try:
            trainer.run()
            table = _exact_table(self.game, trainer.policy)
        finally:
            trainer.close()
        checkpoint = f"{MEMBERS_DIR}/member-{k}/checkpoints/{checkpoint_name(trainer.step)}"
        return PopulationMember(k, f"member-{k}", checkpoint, table)

    def _add(self, member: PopulationMember) -> None:
        self.meta_game.add(from_table(self.os_game, member.policy))
        k, matrix = member.member, self.meta_game.matrix
        payoffs = {(k, j): float(matrix[k, j]) for j in range(k + 1)} | {(j, k): float(matrix[j, k]) for j in range(k)}
        self.store.add_member(member, payoffs)
        self.members.append(member)

    # ---- results -------------------------------------------------------------------

    def _write_nash(self, solved: PopulationIteration) -> None:
        """RUN_DIR/nash: the mixture's behaviour policy (an agent: `sparring play ...
        --players RUN_DIR/nash`) and its members with their weights."""
        folder = self.run_dir / NASH_DIR
        _write_json(folder / "policy.json", policy_json(to_table(self.mixture), game=self.game.spec.versioned_ref,
                                                        exploitability=solved.exploitability))
        _write_json(folder / "members.json", {"meta_strategy": list(solved.meta_strategy), "members": [
            {"name": m.name, "checkpoint": m.checkpoint, "weight": w} for m, w in zip(self.members, solved.meta_strategy)]})
        self.store.add_exploitability(ExploitabilityEntry(
            step=solved.iteration, exploitability=solved.exploitability, nash_conv=2 * solved.exploitability,
            mode="exact", game=self.game.spec.ref, agent="nash", checkpoint=NASH_DIR))

    def _distill(self, solved: PopulationIteration) -> None:
        from sparring.learn.population.distill import distill_mixture

        folder = self.run_dir / DISTILLED_DIR
        self._say(f"distilling the mixture into one adapter ({self.config.distill_steps} passes at most)")
        report = distill_mixture(self.game, to_table(self.mixture), folder, self.config, self._say)
        self.store.add_exploitability(report.entry(solved.iteration + 1, checkpoint=DISTILLED_DIR))
        self._say(f"distilled adapter in {folder}: exploitability {report.exploitability:.4f}")

    def _say(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)


_NO_TIME = PopulationIteration(0, (), 0.0, 0.0)


def _exact_table(game, agent) -> dict[str, dict[int, float]]:
    from sparring.eval.exploitability import agent_policy

    return agent_policy(game, agent, mode="exact").table()


def _write_json(path: Path, data: dict) -> None:
    """Write atomically: a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)
