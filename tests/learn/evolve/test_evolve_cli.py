"""`sparring evolve` as a user runs it, against a model server on 127.0.0.1 that
speaks the real chat protocol: killed with SIGKILL in its second generation and
resumed, it ends with the same versions, decisions and matches as a run never
stopped; `show --playbook` and `report` tell the story."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "backends"))
from fake_openai_server import ok, running_fake_server

from sparring.store import RunStore

BET_RULE = "RULE: when you hold any card | do bet | because the other player folds to bets | matches 1, 2"


def model(slow_second_revision: list[bool]):
    """Players by playbook; critic and reviser by the playbook they are shown, so
    the replies do not depend on the order of requests (a resumed run asks again)."""

    def answer(messages):
        system, last = messages[0][1], messages[-1][1]
        if last.startswith("You coach"):
            return ok("What lost: passing (match 1).\nWhat won: nothing.\nSuggestions:\n- bet")
        if last.startswith("You keep the playbook"):
            if "(empty: no rules yet)" in last:
                return ok(BET_RULE)
            return ok("Keep betting.", delay_s=30 if slow_second_revision[0] else 0)
        return ok("Answer: bet" if ", bet," in system else "Answer: pass")

    return answer


def command(server, out: Path, *extra: str) -> list[str]:
    agent = f"openai(model=fake,base_url={server.base_url},api_key_env='',backoff_s=0.01)"
    return [sys.executable, "-c", "from sparring.cli import main; main()", "evolve", "--game", "kuhn_poker",
            "--agent", agent, "--generations", "2", "--games", "8", "--transcripts", "3", "--out", str(out), *extra]


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


def stored(run_dir: Path) -> tuple:
    store = RunStore(run_dir)
    try:
        generations = [g.__dict__ | {"seconds": 0} for g in store.generations()]
        matches = [(m.index, m.seed, m.seats, m.returns) for m in store.matches()]
        return generations, store.playbooks(), store.promotions(), matches
    finally:
        store.close()


def test_killed_in_a_generation_it_resumes_to_the_same_run(tmp_path):
    slow = [False]
    with running_fake_server() as server:
        server.responder = model(slow)
        whole = run(command(server, tmp_path / "whole"), tmp_path)
        assert whole.returncode == 0, whole.stderr
        assert "promote" in whole.stdout and "no rule in the revision" in whole.stdout

        slow[0] = True  # generation 2's revision hangs: the process is killed waiting for it
        before = len(server.chat_requests())
        process = subprocess.Popen(command(server, tmp_path / "killed"), cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 240
        while not [r for r in server.chat_requests()[before:]
                   if r.body["messages"][-1]["content"].startswith("You keep the playbook")
                   and "(empty: no rules yet)" not in r.body["messages"][-1]["content"]]:
            assert time.time() < deadline and process.poll() is None, "generation 2 never asked for its revision"
            time.sleep(0.2)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        killed_store = RunStore(tmp_path / "killed")
        assert len(killed_store.generations()) == 1  # generation 1 kept, generation 2 open
        killed_store.close()

        slow[0] = False
        resumed = run([*command(server, tmp_path / "killed")[:3], "evolve", "--resume", str(tmp_path / "killed")],
                      tmp_path)
        assert resumed.returncode == 0, resumed.stderr
        assert "generation 2 was not finished: playing it again" in resumed.stdout
    assert stored(tmp_path / "killed") == stored(tmp_path / "whole")

    shown = run([*command(server, tmp_path)[:3], "show", str(tmp_path / "whole"), "--playbook", "1"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "+1. When you hold any card, bet" in shown.stdout and "promote" in shown.stdout
    report = run([*command(server, tmp_path)[:3], "report", str(tmp_path / "whole")], tmp_path)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "whole" / "report" / "report.md").read_text()
    assert "## Evolution" in text and "v1 from v0 (promote)" in text and "12-0-0" in text
