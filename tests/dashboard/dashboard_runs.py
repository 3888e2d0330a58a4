"""Real run directories for the dashboard's tests, written through the real store:
matches played by the arena, training steps as the trainer logs them, an evolution's
playbooks, and the stores a viewer must survive (damaged, of an older schema)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from sparring.agents.base import Decision
from sparring.agents.scripted import RandomAgent
from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan
from sparring.games.registry import make_game
from sparring.records import (
    Choice,
    ExploitabilityEntry,
    Generation,
    PlaybookVersion,
    Promotion,
    Sampling,
)
from sparring.store import RunStore

SCRIPT = "<script>window.pwned=1</script>"
IMAGE = '<img src=x onerror="window.pwned=1">'
MODEL = "model<b>v1</b>"  # an agent name with markup in it: shown as text like everything a run holds


class MaliciousModel:
    """Answers like a language model whose text holds markup. At each decision its
    first answer is rejected and the retry plays the first legal cell; where an even
    number of cells is free every answer is rejected, so the rule plays a random
    move for it."""

    name = MODEL

    def act(self, decisions: list[Decision]) -> list[Choice]:
        return [self._answer(d) for d in decisions]

    def _answer(self, d: Decision) -> Choice:
        legal = d.state.legal_actions()
        prompt = f"{d.state.view(d.player)}\n{SCRIPT}\nAnswer with one line."
        sampling = Sampling("free", 1.0)
        if d.attempt == 0 or len(legal) % 2 == 0:
            return Choice(action=None, reason=f"no cell named in {SCRIPT}", prompt=prompt,
                          completion=f"I think {SCRIPT} is best", sampling=sampling)
        logprobs = dict.fromkeys(legal, -math.log(len(legal)))
        return Choice(action=legal[0], prompt=prompt, completion=f"Answer: {legal[0] + 1} {IMAGE}",
                      action_logprobs=logprobs, sampling=sampling, token_ids=(1, 2, 3), logprobs=(-0.1, -0.2, -0.3),
                      policy_version="step-3")

    def close(self) -> None:
        pass


def play_run(run_dir: Path, game: str, matches: int, agents=None, rule: InvalidMoveRule = InvalidMoveRule()) -> None:
    store = RunStore(run_dir, create=True)
    agents = agents or [RandomAgent("random"), RandomAgent("random-2")]
    config = {"game": game, "players": [a.name for a in agents], "games": matches, "seed": 0}
    store.start(config, kind="play")
    play_matches(rotating_plan(make_game(game), agents, range(matches), run_seed=0), rule=rule,
                 on_match_end=store.write_match)
    store.close()


def step_metrics(step: int) -> dict:
    """A training step's metrics as `Trainer._step_metrics` logs them."""
    return {"step": step, "games": 8, "samples": 30, "trained": 28, "loss": 1.0 / step, "kl": 0.01 * step,
            "approx_kl": 0.002 * step, "clip_frac": 0.1, "grad_norm": 2.0,
            "mean_return": {"0": 0.1 * step, "1": -0.1 * step}, "invalid_rate": 0.5 / step,
            "entropy": math.nan if step == 2 else 1.5 - 0.05 * step, "lr": 1e-5,
            "generate_s": 3.0, "train_s": 5.0, "pool_win_rate": {"step-2": 0.5}}


def train_run(run_dir: Path, steps: int) -> RunStore:
    """A training run with `steps` steps, two evaluations and two exploitability
    checks; the store is returned open, so a test can go on writing steps."""
    store = RunStore(run_dir, create=True)
    store.set_meta("train_config", {"steps": 100, "game": "kuhn_poker"})
    for step in range(1, steps + 1):
        store.write_train_step(step, step_metrics(step))
    for step, value in ((1, -0.2), (steps, 0.1)):
        store.write_train_eval(step, "random", {"games": 40.0, "return": value, "return_ci": 0.15,
                                                "win_or_draw": 0.5, "win_or_draw_ci": 0.1, "invalid": 0.0,
                                                "invalid_ci": 0.0})
    store.add_exploitability(ExploitabilityEntry(step=1, exploitability=0.45, nash_conv=0.9, mode="exact",
                                                 game="kuhn_poker@1"))
    store.add_exploitability(ExploitabilityEntry(step=steps, exploitability=0.3, nash_conv=0.6, mode="sampled",
                                                 game="kuhn_poker@1", interval=(0.25, 0.36)))
    return store


def evolve_run(run_dir: Path) -> None:
    store = RunStore(run_dir, create=True)
    store.set_meta("evolve_config", {"generations": 2, "games": 4})
    rules = [{"when": "holding a king", "do": "bet", "because": "it wins", "evidence": [1]}]
    notes = ["Playbook\n", "Playbook\n- holding a king: bet\n", f"Playbook\n- holding a king: bet\n- {SCRIPT}: pass\n"]
    for version, parent in ((0, None), (1, 0), (2, 1)):
        store.add_playbook(PlaybookVersion(version, parent, max(0, version - 1), json.dumps(rules if version else []),
                                           notes[version]))
    store.add_promotion(Promotion(1, 0, "promote", "the test accepted", 9, 2, 3, 2.9))
    store.add_promotion(Promotion(2, 1, "reject", "the test rejected", 3, 8, 1, -2.95))
    store.finish_generation(Generation(0, 0, 1, 1, "The agent folds kings.", "revised", 1200, 300, 12.5))
    store.finish_generation(Generation(1, 1, 2, 1, f"Critic says {IMAGE}", "revised again", 1300, 320, 13.0))
    store.close()


def build_runs(root: Path) -> dict[str, Path]:
    """Every kind of run directory the tests read, under `root`."""
    runs = {name: root / name for name in ("play/tictactoe", "play/kuhn", "train/live", "evolve/e1", "broken",
                                            "old", "malicious")}
    play_run(runs["play/tictactoe"], "tictactoe", 4)
    play_run(runs["play/kuhn"], "kuhn_poker", 6)
    play_run(runs["malicious"], "tictactoe", 2, agents=[MaliciousModel(), RandomAgent("random")],
             rule=InvalidMoveRule(retries=1, then="random"))
    train_run(runs["train/live"], 5).close()
    evolve_run(runs["evolve/e1"])
    runs["broken"].mkdir()
    (runs["broken"] / "run.sqlite").write_bytes(b"SQLite format 3\x00" + b"\x07" * 600)  # a damaged file
    old = RunStore(runs["old"], create=True)
    old.set_meta("schema", 4)  # as a store written by an older sparring
    old.close()
    return runs
