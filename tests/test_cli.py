"""The command line, run as a user runs it: a real process, real files."""

import os
import subprocess
from pathlib import Path
import sys

import pytest

from sparring.cli import spread_multi_options
from sparring.store import RunStore


def sparring(*args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-c", "from sparring.cli import main; main()", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def test_spread_multi_options():
    assert spread_multi_options(["play", "g", "--players", "a(x=1,y=2)", "b", "--games", "3"]) == [
        "play", "g", "--players", "a(x=1,y=2)", "--players", "b", "--games", "3"]


def test_play_show_export(tmp_path):
    run = sparring("play", "tictactoe", "--players", "perfect", "random", "--games", "6", "--out", "r", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "perfect" in run.stdout and "6 matches" in run.stdout
    shown = sparring("show", "r", "--match", "1", cwd=tmp_path)
    assert shown.returncode == 0 and "plays" in shown.stdout and "returns" in shown.stdout
    exported = sparring("export", "r", "--format", "parquet", cwd=tmp_path)
    assert exported.returncode == 0 and (tmp_path / "r" / "turns.parquet").exists()
    # the same command again continues the complete run and plays nothing new
    again = sparring("play", "tictactoe", "--players", "perfect", "random", "--games", "6", "--out", "r", cwd=tmp_path)
    assert again.returncode == 0 and "6 of 6 matches already stored" in again.stdout


def test_yaml_config_and_openspiel_adapter(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "game: openspiel:goofspiel(num_cards=4)\nplayers: [random, always_bid_1]\ngames: 4\nout: g\n"
        "invalid: {retries: 0, then: random}\n")
    run = sparring("play", "--config", "c.yaml", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "always_bid_1" in run.stdout


@pytest.mark.parametrize("args, message", [
    (["play", "chess9", "--players", "random", "random"], "unknown game 'chess9'"),
    (["play", "matrix(rounds=0)", "--players", "random", "random"], "rounds"),
    (["play", "openspiel:no_such_game", "--players", "random", "random"], "no_such_game"),
    (["play", "tictactoe", "--players", "random", "wizard"], "unknown agent 'wizard'"),
    (["play", "tictactoe", "--players", "random"], "needs 2 players"),
    (["play", "tictactoe", "--players", "random", "cfr"], "cfr"),
    (["play", "kuhn_poker", "--players", "random", "cfr(speed=3)"], "speed"),
    (["play", "tictactoe", "--players", "random", "random", "--games", "0"], "games must be at least 1"),
    (["play", "--config", "bad.yaml"], "not valid YAML"),
    (["play", "--config", "missing.yaml"], "does not exist"),
    (["play", "tictactoe", "--players", "random", "openai(model=m,base_url=http://127.0.0.1:9/v1,api_key_env='')"],
     "cannot reach"),
    (["play", "tictactoe", "--players", "random", "openai(model=m,base_url=http://127.0.0.1:9/v1)"],
     "OPENAI_API_KEY is not set"),
    (["show", "nowhere"], "no run at"),
])
def test_bad_input_is_one_clear_message(tmp_path, args, message):
    (tmp_path / "bad.yaml").write_text("game: [unclosed\n")
    env = {"OPENAI_API_KEY": ""} if "OPENAI_API_KEY" not in message else {}
    result = sparring(*args, cwd=tmp_path, env={k: v for k, v in env.items()})
    if "OPENAI_API_KEY is not set" in message:
        result = subprocess.run(
            [sys.executable, "-c", "from sparring.cli import main; main()", *args], cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
            env={k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"},
        )
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "runs").exists() or args[0] != "play"  # nothing half-made


def test_tournament_and_exploitability_commands(tmp_path):
    run = sparring("tournament", "--game", "kuhn_poker", "--agents", "cfr", "always_bet", "always_pass",
                   "--games", "40", "--bootstrap", "50", "--out", "t", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "Payoff matrix" in run.stdout and "Nash averaging" in run.stdout
    # always_bet takes 1 chip from always_pass in every deal (hand-worked: pass-bet-fold or bet-fold)
    assert "+1.00 ± 0.00" in run.stdout
    uniform = sparring("exploitability", "--game", "kuhn_poker", "--agent", "random", "--mode", "sampled",
                       "--samples", "400", cwd=tmp_path)
    assert uniform.returncode == 0, uniform.stderr
    value = float(uniform.stdout.split("exploitability ")[1].split()[0])
    assert abs(value - 0.4583) < 0.06  # uniform random in Kuhn, known value; sampling error ~0.02


def test_tournament_refusals(tmp_path):
    one = sparring("tournament", "--game", "kuhn_poker", "--agents", "cfr", cwd=tmp_path)
    assert one.returncode == 2 and "at least 2 agents" in one.stderr
    zero = sparring("tournament", "--game", "kuhn_poker", "--agents", "cfr", "random", "--games", "0", cwd=tmp_path)
    assert zero.returncode == 2 and "Traceback" not in zero.stderr


def test_report_of_a_tournament_and_a_benchmark(tmp_path):
    assert sparring("tournament", "--game", "kuhn_poker", "--agents", "cfr", "random", "--games", "10",
                    "--bootstrap", "20", "--out", "t", cwd=tmp_path).returncode == 0
    made = sparring("report", "t", "--bootstrap", "20", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    page = (tmp_path / "t" / "report" / "report.html").read_text()
    assert "Payoff matrix" in page and "data:image/png;base64," in page
    bench = sparring("bench", "matrix2x2", "--agent", "random", "--games", "6", "--out", "b", cwd=tmp_path)
    assert bench.returncode == 0, bench.stderr
    assert sparring("report", "b", cwd=tmp_path).returncode == 0
    assert "matrix" in (tmp_path / "b" / "report" / "report.md").read_text().lower()


def test_an_openai_compatible_server_plays_through_the_cli(tmp_path):
    """A real HTTP server on 127.0.0.1 speaking chat completions, with a 500 to retry."""
    sys.path.insert(0, str(Path(__file__).parent / "backends"))
    from fake_openai_server import ok, running_fake_server, status

    with running_fake_server() as server:
        server.queue(status(500))
        server.always(ok("I think the centre. Answer: 5"))
        agent = f"openai(model=fake,base_url={server.base_url},api_key_env='',backoff_s=0.01)"
        run = sparring("play", "tictactoe", "--players", agent, "random", "--games", "2", "--out", "o", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "retries" in run.stdout  # the backend's counters are reported
    replay = sparring("show", "o", "--match", "0", cwd=tmp_path)
    assert "Answer: 5" in replay.stdout


def test_backend_failures_void_matches_apart_from_the_results(tmp_path):
    """A request that fails after its retries is the server's failure, not the
    model's move: its match is void (never scored, never stored) and said apart;
    the same command again plays it. Most matches void is a failed run."""
    sys.path.insert(0, str(Path(__file__).parent / "backends"))
    from fake_openai_server import ok, running_fake_server, status

    with running_fake_server() as server:
        agent = f"openai(model=fake,base_url={server.base_url},api_key_env='',max_retries=0)"
        server.queue(status(500), status(429))  # the first two requests fail: two matches void
        server.always(ok("Answer: 5"))
        args = ("play", "tictactoe", "--players", agent, "random", "--games", "6", "--concurrency", "1", "--out", "o")
        run = sparring(*args, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert "2 of 6 matches void" in " ".join(run.stdout.split()) and "HTTP 500" in run.stdout
        store = RunStore(tmp_path / "o")
        assert len(store.matches()) == 4
        reasons = [t.reason or "" for m in store.matches() for t in store.turns(m.index)]
        assert not any("backend" in r for r in reasons)  # (forfeits here are the model's own: square 5 taken)
        store.close()
        again = sparring(*args, cwd=tmp_path)  # the void matches are played now
        assert again.returncode == 0 and "void" not in again.stdout
        assert len(RunStore(tmp_path / "o").matches()) == 6

        server.always(status(503))
        down = sparring("tournament", "--game", "tictactoe", "--agents", agent, "random", "--games", "2",
                        "--out", "t", cwd=tmp_path)
    assert down.returncode != 0
    assert "2 of 2 matches failed in the backend" in " ".join(down.stderr.split())


@pytest.mark.slow
def test_the_main_job_trains_and_compares_before_and_after(tmp_path):
    run = sparring("demo", "--iterations", "1", "--eval-games", "8", "--out", "d", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "before" in run.stdout and "exploitability (exact)" in run.stdout and "win rate" in run.stdout
    assert "0.737" in run.stdout  # the embedded model's exact exploitability in scored mode, before training
    assert (tmp_path / "d" / "curves.png").exists()
    assert (tmp_path / "d" / "policy" / "adapter_model.safetensors").exists()
