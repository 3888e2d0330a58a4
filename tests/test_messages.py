"""What a person reads: model text shown, never obeyed; no library chatter; help,
version and training lines that explain themselves; names never cut; `show` on
every kind of run; and one clear message for every bad input, given before a run
directory is made. Commands run as a user runs them: a real process, real files."""

from __future__ import annotations

import importlib.metadata
import math
import os
import random
import subprocess
import sys
import warnings

import pytest

from sparring.agents.base import Choice, Decision
from sparring.agents.registry import AgentFactory, agents_for
from sparring.agents.scripted import FixedActionAgent
from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan
from sparring.display import visible
from sparring.errors import SparringError
from sparring.eval.report import write_report
from sparring.games.registry import make_game
from sparring.learn.step_log import step_line
from sparring.store import RunStore

ANSI_RED, OSC_LINK = "\x1b[31m", "\x1b]8;;http://x\x07"
HOSTILE = f"{ANSI_RED}I bet{OSC_LINK}click\x1b]8;;\x07\r\nAnswer: bet\x9b2J"


def sparring(*args, cwd, env=None, columns: str | None = "200"):
    """The command line in a subprocess; `columns=None` leaves the width to rich, as
    a pipe does (80 columns)."""
    environ = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    if columns is not None:
        environ["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-c", "from sparring.cli import main; main()", *args], check=False,
        cwd=cwd, capture_output=True, text=True, timeout=300, env={**environ, **(env or {})},
    )


def controls(text: str) -> set[str]:
    """The terminal control characters in `text`: ESC, BEL, CR and the C1 CSI."""
    return {c for c in text if c in "\x1b\x07\r\x9b"}


class HostileThenBet:
    """A scripted agent whose answers are full of terminal escape sequences, and
    whose first answer at each decision is rejected: its retry has feedback."""

    name = "hostile"

    def act(self, decisions):
        return [Choice(action=None, reason=f"no move in {HOSTILE!s}", completion=HOSTILE)
                if d.attempt == 0 else Choice(action=d.state.legal_actions()[-1], completion=HOSTILE)
                for d in decisions]

    def close(self):
        pass


@pytest.fixture
def hostile_run(tmp_path):
    kuhn = make_game("kuhn_poker")
    store = RunStore(tmp_path / "run", create=True)
    play_matches(rotating_plan(kuhn, [HostileThenBet(), FixedActionAgent("pass")], range(2), 0),
                 InvalidMoveRule(retries=1), on_match_end=store.write_match)
    store.close()
    return tmp_path / "run"


# ---- A1: model text is shown, never obeyed -------------------------------------------------


def test_visible_draws_control_characters():
    shown = visible(f"a{ANSI_RED}b{OSC_LINK}c\r\nd\x9b")
    assert controls(shown) == set()
    assert shown == "a␛[31mb␛]8;;http://x␇c\nd\\x9b"  # what the model wrote, drawn
    assert visible("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


def test_show_replays_model_text_inert_with_the_feedback_of_each_retry(hostile_run):
    shown = sparring("show", str(hostile_run), "--match", "0", cwd=hostile_run.parent)
    assert shown.returncode == 0, shown.stderr
    assert controls(shown.stdout) == set(), repr(shown.stdout)
    assert "␛[31mI bet" in shown.stdout and "http://x␇" in shown.stdout
    # the retry says which attempt it is and what the model was told before it
    assert "attempt 2" in shown.stdout
    assert "feedback: That answer was rejected: no move in" in shown.stdout


def test_report_pages_keep_model_text_inert(hostile_run):
    html_path, md_path = write_report(hostile_run, bootstrap=10)
    for text in (html_path.read_text(), md_path.read_text()):
        assert controls(text) == set()
        assert "␛[31mI bet" in text


# ---- A2: no library chatter from model commands --------------------------------------------


def test_a_model_command_prints_no_loading_bars_or_deprecation_warnings(tiny_model_dir, tmp_path):
    fast, plain = f"hf(path={tiny_model_dir})", f"hf(path={tiny_model_dir},mode=scored,fast=false)"
    run = sparring("--threads", "1", "play", "tictactoe", "--players", fast, plain, "--games", "2",
                   "--out", "r", cwd=tmp_path, env={"PYTHONWARNINGS": "default"})
    assert run.returncode == 0, run.stderr
    assert "Loading weights" not in run.stderr
    for noise in ("DeprecationWarning", "FutureWarning", "deprecated"):
        assert noise not in run.stderr, run.stderr


def test_adding_lora_warns_about_nothing(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    from sparring.learn.policy import add_lora

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        add_lora(model, r=2, alpha=4, targets=("q_proj",))
    assert [str(w.message) for w in caught if issubclass(w.category, (FutureWarning, DeprecationWarning))] == []


# ---- A3: help, version, training lines -------------------------------------------------------


def test_version_and_help_defaults(tmp_path):
    version = sparring("--version", cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.strip() == f"sparring {importlib.metadata.version('sparring')}"
    helped = sparring("play", "--help", cwd=tmp_path)
    assert "[default: 16]" in helped.stdout and "[default: forfeit]" in helped.stdout


def test_step_line_names_every_number():
    metrics = {"step": 3, "games": 8, "samples": 10, "trained": 6, "mean_return": {"0": 0.25, "1": -0.5},
               "baselines": {"kuhn_poker:0": 0.05, "kuhn_poker:1": -0.02}, "invalid_rate": 0.25,
               "completion_len": 8.0, "loss": 0.0123, "entropy": 1.5, "kl": 0.0, "magnet_kl": 0.0,
               "approx_kl": 0.0003, "clip_frac": 0.0, "sampler_gap": 2e-7, "lr": 1e-5, "generate_s": 1.2,
               "train_s": 3.4}
    line = step_line(metrics, one_game=True)
    assert line.startswith("step 3: 8 games, 10 turns by the policy")
    assert "mean return seat 1 +0.25, seat 2 -0.50" in line
    assert "return baseline seat 1 +0.05, seat 2 -0.02" in line
    assert "trained on 6 of 10 turns (the other 4 had zero advantage)" in line
    assert "invalid answers 25%" in line and "entropy 1.50 nats/token" in line
    assert "sampler/trainer gap 2.0e-07 nats/token" in line and "syncing" not in line
    assert "3.4s training, 0.5s syncing weights" in step_line({**metrics, "sync_s": 0.5}, one_game=True)
    for short in ("b0=", "R0=", " H ", "trained 6/10"):
        assert short not in line
    several = step_line(metrics, one_game=False, kl=True)
    assert "kuhn_poker seat 2 -0.02" in several and "KL to the initial model" in several


# ---- A4, A5: names never cut; show on tournament and benchmark runs -----------------------------


def test_piped_tables_keep_whole_names_and_show_summarises_every_kind_of_run(tmp_path):
    field = ["cfr(iterations=100)", "cfr(iterations=200)"]
    run = sparring("tournament", "--game", "kuhn_poker", "--agents", *field, "--games", "2",
                   "--bootstrap", "10", "--out", "t", cwd=tmp_path, columns=None)
    assert run.returncode == 0, run.stderr
    shown = sparring("show", "t", cwd=tmp_path, columns=None)
    assert shown.returncode == 0, shown.stderr
    for out in (run.stdout, shown.stdout):
        assert "…" not in out  # folded onto more lines, never cut
        assert "=100)" in out and "=200)" in out
    assert "Payoff matrix" in shown.stdout and "Ratings" in shown.stdout
    bench = sparring("bench", "matrix2x2", "--agent", "random", "--games", "4", "--out", "b", cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr
    shown = sparring("show", "b", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "matrix2x2/nash" in shown.stdout and "no finished matches" not in shown.stdout


# ---- B6: OpenSpiel parameters OpenSpiel refuses ---------------------------------------------------


@pytest.mark.parametrize("ref, parameter", [
    ("goofspiel(num_cards=-1)", "num_cards=-1"),  # OpenSpiel loads it, then fails (or worse) at its first state
    ("kuhn_poker(players=1)", "players=1"),
    ("goofspiel(num_cards=4,num_turns=10)", "num_cards=4, num_turns=10"),  # refused only at the first state
])
def test_refused_openspiel_parameters_are_named_before_a_run_starts(tmp_path, ref, parameter):
    with pytest.raises(SparringError, match=rf"cannot play {ref.split('(')[0]} with {parameter}"):
        make_game("openspiel:" + ref)
    run = sparring("play", "openspiel:" + ref, "--players", "random", "random", cwd=tmp_path)
    assert run.returncode == 2 and parameter in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "runs").exists()


def test_unknown_parameters_of_own_games_list_the_known_ones():
    with pytest.raises(SparringError, match="kuhn_poker: no parameter 'players'; it takes none.*openspiel:kuhn_poker"):
        make_game("kuhn_poker(players=3)")
    with pytest.raises(SparringError, match="its parameters are preset, rounds"):
        make_game("matrix(colour=1)")


# ---- B7: agent options, always_<move>, penalty, openai, hints -----------------------------------


@pytest.mark.parametrize("ref, message", [
    ("cfr(iterations=abc)", "iterations must be a whole number, got 'abc'"),
    ("cfr(iterations=1.5)", "iterations must be a whole number"),
    ("cfr(speed=3)", "cfr has no option 'speed': options are iterations"),
    ("hf(path=nowhere,temperature=1e999)", "temperature must be a finite number, got inf"),
    ("hf(path=nowhere,temperature=hot)", "temperature must be a finite number, got 'hot'"),
    ("hf(path=nowhere,reasoning=3)", "reasoning must be true or false"),
    ("hf(path=nowhere,mode=fast)", "mode must be one of free, scored"),
    ("hf(path=nowhere,max_batch=0)", "max_batch must be a whole number of sequences >= 1"),
    ("hf(path=nowhere,device=gpu)", "device 'gpu' unknown: use cpu, cuda"),
    ("hf(path=3)", "path must be text"),
    ("openai", "openai needs the name of the model"),
    ("openai(base_url=http://127.0.0.1:9/v1)", "openai needs the name of the model"),
    ("always_raise", "Kuhn poker has no move 'raise'. Its moves: bet, pass"),
])
def test_bad_agent_options_are_one_clear_message(ref, message):
    with pytest.raises(SparringError, match=message) as refused:
        AgentFactory(make_game("kuhn_poker")).make(ref)
    assert "__init__" not in str(refused.value) and "positional argument" not in str(refused.value)


def test_always_move_matches_names_loosely_and_refuses_moves_no_game_has():
    goofspiel = make_game("openspiel:goofspiel(num_cards=4)")
    agent = AgentFactory(goofspiel).make("always_bid_1")  # goofspiel's move is "Bid: 1"
    state = goofspiel.new_initial_state(random.Random(0))
    choice = agent.act([Decision(state, state.current_player(), random.Random(0), 0)])[0]
    assert state.action_name(choice.action) == "Bid: 1"
    # built without its game, the agent refuses at its first decision instead of playing random
    kuhn = make_game("kuhn_poker").new_initial_state(random.Random(0))
    with pytest.raises(SparringError, match="no move 'zzz'. Its moves: bet, pass"):
        FixedActionAgent("zzz").act([Decision(kuhn, kuhn.current_player(), random.Random(0), 0)])


def test_non_finite_penalty_is_refused_before_a_run_starts(tmp_path):
    with pytest.raises(SparringError, match="finite"):
        InvalidMoveRule(penalty=math.nan)
    run = sparring("play", "tictactoe", "--players", "random", "random", "--penalty", "nan", cwd=tmp_path)
    assert run.returncode == 2 and "finite number" in run.stderr
    assert not (tmp_path / "runs").exists()


def test_hints_name_only_agents_that_play_the_game():
    kuhn, leduc3 = make_game("kuhn_poker"), make_game("openspiel:leduc_poker(players=3)")
    assert "mcts" not in agents_for(kuhn) and "cfr" in agents_for(kuhn)
    assert "cfr" not in agents_for(leduc3) and "perfect" not in agents_for(make_game("connect_four"))
    with pytest.raises(SparringError) as perfect_in_kuhn:
        AgentFactory(kuhn).make("perfect")
    assert "cfr" in str(perfect_in_kuhn.value) and "mcts" not in str(perfect_in_kuhn.value)
    with pytest.raises(SparringError) as mcts_in_leduc3:
        AgentFactory(leduc3).make("mcts")
    assert "use random or an LLM agent" in str(mcts_in_leduc3.value)
    with pytest.raises(SparringError) as cfr_in_connect_four:
        AgentFactory(make_game("connect_four")).make("cfr")
    assert str(cfr_in_connect_four.value).endswith("use mcts")  # `perfect` plays tic-tac-toe only
