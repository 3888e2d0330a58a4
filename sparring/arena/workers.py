"""Matches played by Ray workers: the same plans `play_matches` plays, spread over
actors on this machine or a cluster, the results coming back to the caller as
each chunk ends (so a store written from them keeps every finished match).

A worker rebuilds each match from references: the game by its versioned
reference, each seat's agent by its name, which the agent registry sets to the
reference it was made from (`random`, `cfr(iterations=200)`, `smollm2(...)`, a
checkpoint's path). A worker keeps the agents it built, so a model loads once per
worker, not once per chunk. A match's transcript depends only on its seed (the
arena seeds every decision from it, and the model backends sample per request),
so 1 worker and N workers play the same matches.

Ray is the `ray` extra; a cluster is reached by address (`ray start --head` on
one machine, `--ray-address auto` or `HOST:6379` here), and checkpoint paths must
then exist on every machine at the same place (a shared file system).
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from sparring.agents.registry import check_reference
from sparring.arena.match import (
    InvalidMoveRule,
    PlannedMatch,
    play_matches,
    tell_watchers,
)
from sparring.errors import SparringError
from sparring.records import MatchResult


@dataclass(frozen=True)
class MatchSpec:
    """A planned match by reference: what crosses to a worker."""

    index: int
    game: str  # versioned game reference
    seats: tuple[str, ...]  # agent reference per seat
    seed: int


@dataclass
class ByReference:
    """An agent the caller names but never builds: the workers build it (a model
    loads on each worker, not also in the driver)."""

    name: str  # its reference

    def __post_init__(self):
        self.name = check_reference(self.name)  # a bad name is refused here, before any run starts

    def act(self, decisions):
        raise SparringError(f"{self.name} plays on a worker only (Workers.play), not in this process")

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class TrainedAdapter:
    """A model agent whose LoRA adapter the caller is training: its base model, its
    agent options, and the adapter as the files peft's `save_pretrained` writes,
    sent to every worker by value (through Ray's object store, so a cluster needs no
    shared disk for it) and stamped with a version that every turn it plays records.
    Plans name the agent by `name`."""

    name: str
    base: str  # the base model's directory
    options: dict  # LLMConfig fields (mode, temperature, ...)
    dtype: str
    files: dict[str, bytes]  # adapter_config.json, adapter_model.safetensors
    version: str


def spec_of(planned: PlannedMatch) -> MatchSpec:
    """The planned match by reference; an agent a worker cannot rebuild is refused."""
    seats = []
    for agent in planned.seats:
        if agent.name == "human" or agent.name.startswith("human("):
            raise SparringError("a person cannot play on a worker: play matches with a human seat without --workers")
        seats.append(_portable(agent.name))
    return MatchSpec(planned.index, planned.game.spec.versioned_ref, tuple(seats), planned.seed)


def _portable(ref: str) -> str:
    """A bare path made absolute, so a worker started elsewhere finds it (on a cluster:
    the same path on a shared file system)."""
    if "(" not in ref and ("/" in ref or Path(ref).exists()):
        return str(Path(ref).resolve())
    return ref


class MatchWorker:
    """A Ray actor's body: builds agents by reference, keeps them, plays chunks."""

    def __init__(self, threads: int = 1):
        from sparring.backends.threads import use_threads

        use_threads(threads)  # each worker holds its own core(s), not every core
        self.factories: dict[str, object] = {}
        self.trained: dict[str, object] = {}  # name -> the agent of a TrainedAdapter
        self.by_path: dict[tuple[str, str], tuple[object, object]] = {}  # (game, path) -> (agent, its factory)

    def take_adapter(self, adapter: TrainedAdapter) -> None:
        """Play `adapter` from now on: the first time, its base model loads with the
        adapter on it (unmerged, as the trainer holds it); later, only its weights change."""
        import tempfile

        from peft import PeftModel, set_peft_model_state_dict
        from safetensors.torch import load as load_tensors

        from sparring.agents.llm import LLMAgent, LLMConfig
        from sparring.backends.hf import HFBackend, HFConfig

        agent = self.trained.get(adapter.name)
        if agent is None:
            backend = HFBackend(HFConfig(path=adapter.base, dtype=adapter.dtype), name=adapter.name)
            with tempfile.TemporaryDirectory() as folder:
                for name, data in adapter.files.items():
                    (Path(folder) / name).write_bytes(data)
                backend.model = PeftModel.from_pretrained(backend.model, folder).eval()
            agent = self.trained[adapter.name] = LLMAgent(backend, LLMConfig(**adapter.options), name=adapter.name)
        else:
            set_peft_model_state_dict(agent.backend.model, load_tensors(adapter.files["adapter_model.safetensors"]))
        agent.backend.weights_version = adapter.version  # keys and values cached under older weights are dropped

    def play(self, specs: list[MatchSpec], rule: InvalidMoveRule, concurrency: int) -> tuple[list[MatchResult], dict[int, str]]:
        from sparring.agents.registry import AgentFactory
        from sparring.games.registry import make_game

        # Agents given by path (checkpoints, above all those of a training pool, which
        # grows) are kept only while chunks need them: each holds a model.
        needed = {(spec.game, ref) for spec in specs for ref in spec.seats if ref.startswith("/")}
        for key in set(self.by_path) - needed:
            self.by_path.pop(key)[1].close()
        plan = []
        for spec in specs:
            if spec.game not in self.factories:
                self.factories[spec.game] = AgentFactory(make_game(spec.game))
            factory = self.factories[spec.game]
            seats = []
            for ref in spec.seats:
                if ref in self.trained:
                    seats.append(self.trained[ref])
                elif ref.startswith("/"):
                    if (spec.game, ref) not in self.by_path:
                        own = AgentFactory(factory.game)  # closed with the agent: its model goes too
                        self.by_path[spec.game, ref] = (own.make(ref), own)
                    seats.append(self.by_path[spec.game, ref][0])
                else:
                    seats.append(factory.make(ref))
            plan.append(PlannedMatch(spec.index, factory.game, tuple(seats), spec.seed))
        voided: dict[int, str] = {}
        results = play_matches(plan, rule, concurrency, on_match_void=voided.__setitem__)
        return results, voided

    def pid(self) -> int:
        return os.getpid()


class Workers:
    """`count` Ray actors, started on this machine (a local Ray) or on the cluster at
    `address`, each with `threads` CPU threads (and a GPU, where the cluster has one
    for each); `play` is `play_matches` over them."""

    def __init__(self, count: int, address: str | None = None, threads: int = 1,
                 say: Callable[[str], None] = print):
        self.say = say  # how a lost worker is reported
        if count < 1:
            raise SparringError(f"--workers {count}: give 1 or more workers")
        ray = _ray()
        if not ray.is_initialized():
            # a local Ray gets exactly the CPUs its workers take; a cluster has its own
            options = {"address": address} if address else {"num_cpus": count * threads}
            try:
                _check_answers(address)
                ray.init(**options, include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, TimeoutError, RuntimeError, OSError) as exc:
                if not address:
                    raise
                raise SparringError(f"no Ray cluster answers at {address} ({str(exc).splitlines()[0]}): start one "
                                    "with `ray start --head` and give its HOST:6379, or leave out --ray-address "
                                    "for a local Ray") from None
        free = _free_cpus(ray, count * threads)
        if free < count * threads:  # an actor Ray cannot place would wait for ever
            raise SparringError(f"{count} workers of {threads} CPU each need {count * threads} CPUs, and the Ray "
                                f"cluster has {free:g} free: ask for fewer workers, or add machines to the cluster")
        # a cluster with a GPU for every worker gives each one (a vllm or hf agent on it uses it)
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= count else 0
        actor = ray.remote(num_cpus=threads, num_gpus=gpus)(MatchWorker)
        self.actors = [actor.remote(threads) for _ in range(count)]

    def play(self, plan: Iterable[PlannedMatch], rule: InvalidMoveRule = InvalidMoveRule(), concurrency: int = 64,
             on_match_end: Callable[[MatchResult], None] | None = None,
             on_match_void: Callable[[int, str], None] | None = None) -> list[MatchResult]:
        """Play the plan as `play_matches` does (the same results, in index order,
        the same callbacks, called here as each worker's chunk of up to
        `concurrency` matches ends), the chunks dealt to the workers in turn.

        A worker that dies (its process killed, its machine gone) loses only its
        unfinished chunks, whose results never came back: they are played again on
        the workers left, so no finished match is lost or counted twice."""
        ray = _ray()
        specs = [spec_of(p) for p in plan]
        tell_watchers(len(specs), 0)
        # every worker gets work: chunks of at most `concurrency`, at least one per worker
        size = max(1, min(concurrency, math.ceil(len(specs) / len(self.actors))))
        chunks = [specs[k:k + size] for k in range(0, len(specs), size)]
        on = {}  # pending result -> (its chunk, the actor playing it)

        def deal(chunk: list[MatchSpec], turn: int) -> None:
            actor = self.actors[turn % len(self.actors)]
            on[actor.play.remote(chunk, rule, concurrency)] = (chunk, actor)

        for k, chunk in enumerate(chunks):
            deal(chunk, k)
        finished: list[MatchResult] = []
        while on:
            done, _ = ray.wait(list(on), num_returns=1)
            chunk, actor = on.pop(done[0])
            try:
                results, voided = ray.get(done[0])
            except ray.exceptions.RayActorError:
                self._lose(actor, f"; its {len(chunk)} unfinished matches play again on the workers left")
                deal(chunk, len(on))
                continue
            except ray.exceptions.RayTaskError as exc:  # a worker's own error, said as it said it
                if isinstance(exc.cause, SparringError):
                    raise exc.cause from None
                raise
            for index, reason in sorted(voided.items()):
                tell_watchers(0, 1)
                if on_match_void is not None:
                    on_match_void(index, reason)
            for result in results:
                tell_watchers(0, 1)
                finished.append(result)
                if on_match_end is not None:
                    on_match_end(result)
        return sorted(finished, key=lambda r: r.index)

    def push(self, adapter: TrainedAdapter) -> None:
        """Every worker plays `adapter`'s weights from now on (put in the object store
        once, fetched by each worker); returns when all have it."""
        ray = _ray()
        shared = ray.put(adapter)
        for actor, taken in [(actor, actor.take_adapter.remote(shared)) for actor in self.actors]:
            try:
                ray.get(taken)
            except ray.exceptions.RayActorError:
                self._lose(actor, "")

    def _lose(self, actor, consequence: str) -> None:
        """Stop dealing to a dead worker; refuse to go on with none left."""
        if actor in self.actors:
            self.actors.remove(actor)
        if not self.actors:
            raise SparringError("every Ray worker died (killed, out of memory, or its machine left the cluster); "
                                "what finished is kept: run the command again to go on")
        self.say(f"a Ray worker died ({len(self.actors)} left){consequence}")

    def close(self) -> None:
        ray = _ray()
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


def _check_answers(address: str | None, wait_s: float = 5.0) -> None:
    """Raise OSError unless something listens at a HOST:PORT address (Ray itself
    retries an address that does not answer for minutes). `auto` and local Rays
    are Ray's to find."""
    if not address or address in ("auto", "local"):
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise OSError(f"{address} is not HOST:PORT")
    socket.create_connection((host, int(port)), timeout=wait_s).close()


def _free_cpus(ray, needed: int, wait_s: float = 10.0) -> float:
    """The cluster's free CPUs, waiting a little for `needed` of them: actors just
    killed give theirs back a moment later."""
    deadline = time.monotonic() + wait_s
    while (free := ray.available_resources().get("CPU", 0)) < needed and time.monotonic() < deadline:
        time.sleep(0.2)
    return free


def _ray():
    try:
        import ray
    except ImportError:
        raise SparringError("--workers and --ray-address need Ray: pip install 'sparring[ray]'") from None
    return ray
