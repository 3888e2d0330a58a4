"""A population self-play run (PSRO) of a language model, stored and resumable.

    sparring population --game kuhn_poker --iterations 8 --out runs/p1

The population starts with the base model, playing by scored choice. Each
iteration solves the meta-game between the members for a meta-strategy and adds a
new member that the oracle trains against that mixture:

- `rl` (default): the self-play trainer trains a new LoRA adapter of the base model
  against the mixture;
- `exact`: OpenSpiel's best response, a tabular member: the reference that shows
  the machinery converges.

In a small game (every information state enumerable, `two_player_zero_sum`) each
member's exact action distribution at every state is read off, the meta-game is
exact (tree walks), the mixture is one behaviour policy (which the rl oracle's
opponent plays: realization-equivalent to drawing a member per match), and its
exploitability is measured exactly. In a larger 2-player zero-sum game the meta-game
is sampled from play (`matches_per_entry` per entry, with 95% intervals), the
oracle's opponent draws a member per match (`MixtureAgent`), and exploitability is
not measured; `meta_game=sampled` samples a small game's meta-game too.

At the end the run holds RUN_DIR/nash (the meta-Nash mixture: `members.json`, an
agent that draws a member per match, and in small games `policy.json`, its
behaviour policy) and, with the rl oracle in a small game, RUN_DIR/distilled: one
adapter trained to play the mixture at every information state. Every member,
meta-game entry and solve is in the run store as it happens; a run killed at any
moment resumes from the last member (a member in training resumes from its last
checkpoint).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from open_spiel.python import policy as os_policy

from sparring.agents.registry import MEMBERS_FILE, POLICY_FILE, AgentFactory
from sparring.agents.solvers import policy_json
from sparring.arena.match import play_matches
from sparring.arena.workers import ByReference
from sparring.errors import SparringError
from sparring.games.registry import make_game
from sparring.learn.checkpoint import check_stored_settings, write_json
from sparring.learn.population.metagame import (
    MetaGame,
    SampledMetaGame,
    from_table,
    to_table,
    two_player_zero_sum,
)
from sparring.learn.population.metasolvers import META_SOLVERS, meta_solver
from sparring.learn.population.oracles import exact_best_response
from sparring.learn.population.psro import measured_mixture
from sparring.records import ExploitabilityEntry, PopulationIteration, PopulationMember
from sparring.store import RunStore

ORACLES = ("rl", "exact")
METHODS = ("psro",)
META_GAMES = ("auto", "exact", "sampled")
MEMBERS_DIR, MIXTURES_DIR, NASH_DIR, DISTILLED_DIR = "members", "mixtures", "nash", "distilled"


@dataclass(frozen=True)
class PopulationConfig:
    game: str = "kuhn_poker"
    """A 2-player zero-sum game: kuhn_poker, leduc_poker (exact meta-game), liars_dice (sampled), ..."""
    method: str = "psro"
    """psro: policy-space response oracles (Lanctot et al. 2017)."""
    iterations: int = 8
    """Members added to the first (the base model)."""
    solver: str = "nash"
    """Meta-solver: nash, alpha_rank, uniform (fictitious play) or prd."""
    oracle: str = "rl"
    """rl (a LoRA adapter trained against the mixture) or exact (tabular best response)."""
    meta_game: str = "auto"
    """exact (tree walks with the members' exact distributions), sampled (from play,
    with intervals) or auto: exact where the game is small enough, else sampled."""
    matches_per_entry: int = 200
    """Sampled meta-game: matches between each pair of members, half in each seat."""
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
    workers: int = 0
    """Ray workers that play a sampled meta-game's matches, each building the members
    by reference (the ray extra); 0 plays them in this process, the same matches."""
    ray_address: str = ""
    """A Ray cluster for the workers (auto, or HOST:6379); empty: a local Ray."""
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
        if self.meta_game not in META_GAMES:
            raise SparringError(f"meta-game '{self.meta_game}' unknown: use {', '.join(META_GAMES)}")
        if self.matches_per_entry < 4 or self.matches_per_entry % 2:
            raise SparringError(f"matches_per_entry must be even and at least 4 (half in each seat), "
                                f"got {self.matches_per_entry}")
        if self.solver not in META_SOLVERS:
            raise SparringError(f"meta-solver '{self.solver}' unknown: use one of {', '.join(META_SOLVERS)}")
        for name, value, low in (("iterations", self.iterations, 0), ("steps", self.steps, 1),
                                 ("games_per_step", self.games_per_step, 1), ("distill_steps", self.distill_steps, 0),
                                 ("time_budget_s", self.time_budget_s, 0)):
            if value < low:
                raise SparringError(f"{name} must be >= {low}, got {value}")
        if self.lr <= 0 or self.temperature <= 0:
            raise SparringError("lr and temperature must be > 0")
        if self.workers < 0 or (self.ray_address and not self.workers):
            raise SparringError(f"workers={self.workers}: give 0 (this process) or more; a ray_address needs workers")
        if not self.out and not self.resume:
            raise SparringError("no run directory: set out=DIR for a new run or resume=DIR to continue one")
        if self.out and self.resume and Path(self.out) != Path(self.resume):
            raise SparringError(f"out={self.out} and resume={self.resume} differ: give only resume=DIR to continue a run")

    def to_dict(self) -> dict[str, Any]:
        where = ("out", "resume", "time_budget_s", "workers", "ray_address")  # change no number the run stores
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in where}


def run_population(config: PopulationConfig, console=None) -> Path:
    """Run (or continue) a population and return its directory."""
    population = Population(config, console)
    try:
        population.run()
    finally:
        population.close()
    return population.run_dir


# A run stored before these settings existed ran with an exact meta-game in a small
# game, which these give it again.
EARLIER_SETTINGS = {"meta_game": "auto", "matches_per_entry": 200}


def meta_game_kind(config: PopulationConfig, game) -> tuple[bool, str | None]:
    """(sample the meta-game?, why the game is too large to enumerate, or None), as
    `config` asks and the game allows; refuses, with the reason and what to do
    instead, a setting that cannot serve the game."""
    try:
        two_player_zero_sum(game)
        too_large = None
    except SparringError as err:
        too_large = str(err)
    spec = game.spec
    if spec.players != 2 or not spec.zero_sum:
        raise SparringError(f"{spec.ref} is not a 2-player zero-sum game, so its meta-game is not symmetric "
                            "zero-sum: population play needs one (kuhn_poker, leduc_poker, liars_dice, ...)")
    if too_large and config.meta_game == "exact":
        raise SparringError(f"{too_large}. Sample the meta-game from play instead: --meta-game sampled")
    if too_large and config.oracle == "exact":
        raise SparringError(f"the exact oracle walks the whole game tree: {too_large}. Use --oracle rl")
    return config.meta_game == "sampled" or too_large is not None, too_large


class Population:
    def __init__(self, config: PopulationConfig, console=None):
        self.config, self.console = config, console
        self.game = make_game(config.game)
        self.sampled, too_large = meta_game_kind(config, self.game)  # refuses before any compute
        self.os_game = None if too_large else self.game.os_game
        self.run_dir = Path(config.resume or config.out)
        self.store = RunStore(self.run_dir, create=not config.resume)
        stored = self.store.get_meta("population_config")
        check_stored_settings(None if stored is None else {**EARLIER_SETTINGS, **stored}, config.to_dict(),
                              self.run_dir, resuming=bool(config.resume), kind="population",
                              occupied=bool(self.store.finished_indices()))
        self.store.set_meta("kind", "population")
        self.store.set_meta("population_config", config.to_dict())
        if too_large:
            self._say(f"{too_large}. The meta-game is sampled from play instead ({config.matches_per_entry} matches "
                      "per entry, with 95% intervals), and the mixture's exploitability is not measured")
        self.solver = meta_solver(config.solver)
        self.members = self.store.members()
        self.tables = None if too_large else [from_table(self.os_game, m.policy) for m in self.members]
        self.factory = AgentFactory(self.game)  # the members as agents, for a sampled meta-game
        self.workers = None
        if self.sampled and config.workers:
            from sparring.arena.workers import Workers

            self.workers = Workers(config.workers, config.ray_address or None, say=self._say)
        if self.sampled:  # the stored entries: replaying their matches would give the same
            self.meta_game = SampledMetaGame(self.game, config.matches_per_entry, config.seed,
                                             self.workers.play if self.workers else play_matches)
            self.meta_game.restore(self._member_agents(self.members), *map(self._square, (
                self.store.metagame(), self.store.metagame_half_widths())))
        else:
            self.meta_game = MetaGame(self.game)
            for table in self.tables:  # the same members give the same exact meta-game
                self.meta_game.add(table)
        self.started = time.perf_counter() - (self.store.population_iterations() or [_NO_TIME])[-1].seconds

    def _square(self, entries: dict[tuple[int, int], float]) -> np.ndarray:
        n = len(self.members)
        return np.array([[entries.get((i, j), 0.0) for j in range(n)] for i in range(n)]).reshape(n, n)

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

    def close(self) -> None:
        if self.workers is not None:
            self.workers.close()
        self.factory.close()
        self.store.close()

    def _out_of_time(self) -> bool:
        budget = self.config.time_budget_s
        if budget and time.perf_counter() - self.started > budget:
            self._say(f"time budget of {budget:g} s used up with {len(self.members)} members")
            return True
        return False

    def solve(self) -> PopulationIteration:
        """The meta-strategy, and in a small game the mixture's behaviour policy and
        its exact exploitability, recorded."""
        sigma = self.solver(self.meta_game.matrix)
        self.mixture, exploitability = None, None
        if self.tables is not None:
            self.mixture, exploitability = measured_mixture(self.game, self.tables, sigma)
        solved = PopulationIteration(iteration=len(self.members) - 1, meta_strategy=tuple(float(p) for p in sigma),
                                     exploitability=exploitability, seconds=time.perf_counter() - self.started)
        self.store.add_population_iteration(solved)
        measured = "" if exploitability is None else f", exploitability {exploitability:.4f}"
        self._say(f"iteration {solved.iteration}: {len(self.members)} members, meta-strategy "
                  f"[{', '.join(f'{p:.2f}' for p in solved.meta_strategy)}]{measured}")
        return solved

    # ---- members -------------------------------------------------------------------

    def _initial(self) -> PopulationMember:
        if self.config.oracle == "exact":
            return PopulationMember(0, "uniform", None, to_table(os_policy.TabularPolicy(self.os_game)))
        if self.tables is None:  # nothing to read off: the base model plays as it is
            return PopulationMember(0, "base", None, {})
        from sparring.agents.llm import LLMAgent, LLMConfig
        from sparring.backends.embedded import embedded_model_dir
        from sparring.backends.hf import native_dtype
        from sparring.learn.policy import load_backend

        backend = load_backend(self.config.model or str(embedded_model_dir()), native_dtype(), "cpu", "base")
        try:
            agent = LLMAgent(backend, LLMConfig(mode="scored", temperature=self.config.temperature), name="base")
            return PopulationMember(0, "base", None, _exact_table(self.game, agent))
        finally:
            backend.close()

    def _respond(self, solved: PopulationIteration) -> PopulationMember:
        k = len(self.members)
        if self.config.oracle == "exact":
            return PopulationMember(k, f"best-response-{k}", None, to_table(exact_best_response(self.game, self.mixture)))
        if self.mixture is not None:  # the behaviour policy, exact and cheap to play
            opponent = self.run_dir / MIXTURES_DIR / f"iteration-{solved.iteration}.json"
            write_json(opponent, policy_json(to_table(self.mixture), game=self.game.spec.versioned_ref,
                                             meta_strategy=list(solved.meta_strategy)))
        else:  # its members, one drawn per match
            opponent = self.run_dir / MIXTURES_DIR / f"iteration-{solved.iteration}"
            write_json(opponent / MEMBERS_FILE, self._members_spec(solved.meta_strategy))
        return self._train_member(k, opponent)

    def _train_member(self, k: int, opponent: Path) -> PopulationMember:
        """The rl oracle: a new adapter trained by self-play RL against the mixture."""
        from sparring.learn.checkpoint import checkpoint_name, latest_checkpoint
        from sparring.learn.config import TrainConfig
        from sparring.learn.trainer import Trainer

        c = self.config
        member_dir = self.run_dir / MEMBERS_DIR / f"member-{k}"
        resume = latest_checkpoint(member_dir) is not None
        if not resume:
            shutil.rmtree(member_dir, ignore_errors=True)  # an attempt killed before its first checkpoint
        kind = "policy" if opponent.suffix == ".json" else "mixture"  # a policy file, or a members folder
        train = TrainConfig(
            game=c.game, model=c.model, mode="scored", temperature=c.temperature,
            opponents=(f"{kind}(path={opponent})",), steps=c.steps, games_per_step=c.games_per_step,
            lr=c.lr, eval_every=0, eval_exploitability=False, checkpoint_every=max(1, c.steps // 4),
            seed=c.seed + k, **({"resume": str(member_dir)} if resume else {"out": str(member_dir)}),
        )
        self._say(f"training member {k} against the mixture ({c.steps} steps)")
        trainer = Trainer(train, self.console)
        try:
            trainer.run()
            table = {} if self.tables is None else _exact_table(self.game, trainer.policy)
        finally:
            trainer.close()
        checkpoint = f"{MEMBERS_DIR}/member-{k}/checkpoints/{checkpoint_name(trainer.step)}"
        return PopulationMember(k, f"member-{k}", checkpoint, table)

    def _add(self, member: PopulationMember) -> None:
        """The member, its meta-game row and column (exact, or played), stored at once."""
        k = member.member
        if self.tables is not None:
            self.tables.append(from_table(self.os_game, member.policy))
        if self.sampled:
            self._say(f"playing member {k} against the {k} before it ({self.config.matches_per_entry} matches each)")
            self.meta_game.add(self._member_agents([member])[0])
        else:
            self.meta_game.add(self.tables[-1])
        matrix, cells = self.meta_game.matrix, [(k, j) for j in range(k + 1)] + [(j, k) for j in range(k)]
        half_widths = ({(i, j): float(self.meta_game.half_widths[i, j]) for i, j in cells if i != j}  # M[i, i] = 0
                       if self.sampled else None)
        self.store.add_member(member, {cell: float(matrix[cell]) for cell in cells}, half_widths)
        self.members.append(member)

    def _member_agents(self, members: list[PopulationMember]) -> list:
        spec = self._members_spec([1.0] * len(members), members)
        if self.workers is None:
            return self.factory.population_members(spec, self.run_dir)
        # each worker builds them: by path, or the base model by reference
        return [ByReference(str((self.run_dir / (m["policy"] or m["checkpoint"])).resolve())
                            if m["policy"] or m["checkpoint"] else self._base_reference(spec))
                for m in spec["members"]]

    @staticmethod
    def _base_reference(spec: dict) -> str:
        from sparring.backends.embedded import embedded_model_dir

        options = ",".join(f"{k}={v}" for k, v in spec["agent"].items())
        return f"hf(path={spec['model'] or embedded_model_dir()},{options})"

    def _members_spec(self, weights, members: list[PopulationMember] | None = None) -> dict:
        """The members with their weights in MEMBERS_FILE's format (what the agent
        factory plays): adapter members by checkpoint, tabular ones by policy file
        (written here), the base model by neither."""
        from sparring.backends.hf import native_dtype

        entries = []
        for member, weight in zip(self.members if members is None else members, weights):
            policy = None
            if self.config.oracle == "exact":  # a tabular member plays from its own file, written once
                policy = f"{MEMBERS_DIR}/member-{member.member}/policy.json"
                if not (self.run_dir / policy).exists():
                    write_json(self.run_dir / policy, policy_json(member.policy, game=self.game.spec.versioned_ref))
            entries.append({"name": member.name, "checkpoint": member.checkpoint, "policy": policy, "weight": weight})
        return {"meta_strategy": list(weights), "members": entries, "model": self.config.model,
                "agent": {"mode": "scored", "temperature": self.config.temperature, "dtype": native_dtype()}}

    # ---- results -------------------------------------------------------------------

    def _write_nash(self, solved: PopulationIteration) -> None:
        """RUN_DIR/nash: its members with their weights (an agent that draws a
        member per match: `sparring play ... --players RUN_DIR/nash`) and in a small
        game the mixture's behaviour policy (`RUN_DIR/nash/policy.json`, the same
        strategy as one tabular policy) and its exploitability."""
        folder = self.run_dir / NASH_DIR
        write_json(folder / MEMBERS_FILE, self._members_spec(solved.meta_strategy))
        if self.mixture is None:
            return
        write_json(folder / POLICY_FILE, policy_json(to_table(self.mixture), game=self.game.spec.versioned_ref,
                                                     exploitability=solved.exploitability))
        self.store.add_exploitability(ExploitabilityEntry(
            step=solved.iteration, exploitability=solved.exploitability, nash_conv=2 * solved.exploitability,
            mode="exact", game=self.game.spec.ref, agent="nash", checkpoint=NASH_DIR))

    def _distill(self, solved: PopulationIteration) -> None:
        from sparring.learn.population.distill import distill_mixture

        if self.mixture is None:
            self._say("no distilled adapter: distillation fits the mixture at every information state, "
                      f"and {self.game.spec.ref} has too many to enumerate")
            return
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
