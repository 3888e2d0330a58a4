"""Run reports: each kind of run gives its sections with numbers worked out by hand
(Kuhn poker: a player who always bets wins the ante from one who always passes;
uniform random play is exploitable by 0.4583), model text stays text, and an empty
run says what is missing."""

from __future__ import annotations

import re

import pytest

from sparring.agents.base import Choice
from sparring.agents.scripted import FixedActionAgent, RandomAgent
from sparring.arena.match import play_matches, rotating_plan
from sparring.arena.tournament import run_tournament
from sparring.errors import SparringError
from sparring.eval.benchmarks.report import BenchmarkReport
from sparring.eval.benchmarks.stats import Estimate
from sparring.eval.report import write_report
from sparring.games.registry import make_game
from sparring.records import MatchResult, Turn
from sparring.store import RunStore


@pytest.fixture
def kuhn():
    return make_game("kuhn_poker")


class FirstTryWrong:
    """Gives an unreadable answer at every first attempt, then passes on the retry:
    exactly half of its answers are invalid."""

    name = "first_try_wrong"

    def act(self, decisions):
        return [
            Choice(action=None, reason="no answer found", completion="hmm, I would like to raise!")
            if d.attempt == 0 else Choice(action=d.state.legal_actions()[0], completion="Answer: pass")
            for d in decisions
        ]

    def close(self):
        pass


def table_after(md: str, heading: str) -> list[list[str]]:
    """The rows (cells) of the first markdown table after the line `heading`."""
    lines = md.splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split(" | ")])
        elif rows:
            break
    return rows[2:]  # past the header and the --- line


def row_of(rows: list[list[str]], first: str) -> list[str]:
    return next(r for r in rows if r[0] == first)


def read(paths):
    html_path, md_path = paths
    return html_path.read_text(), md_path.read_text()


def test_play_run_reports_results_invalid_rate_and_examples(kuhn, tmp_path):
    store = RunStore(tmp_path / "run", create=True)
    store.start({"game": "kuhn_poker"})
    play_matches(rotating_plan(kuhn, [FixedActionAgent("bet"), FirstTryWrong()], range(4), 0), on_match_end=store.write_match)
    store.close()

    html_path, md_path = write_report(tmp_path / "run")
    html, md = read((html_path, md_path))
    assert html_path == tmp_path / "run" / "report" / "report.html"
    rows = table_after(md, "## Results per agent")
    # always_bet takes the ante from a player who folds to every bet: +1 every match.
    assert row_of(rows, "always_bet")[1:6] == ["4", "4", "0", "0", "+1.000 ± 0.000"]
    # Seat 1 in matches 0 and 2 (pass, then fold: 2 decisions), seat 2 in 1 and 3 (1
    # decision): 6 decisions, each answered twice, the first time wrongly.
    assert row_of(rows, "first_try_wrong")[6] == "50.0% (6/12)"
    assert "invalid: no answer found" in html and "hmm, I would like to raise!" in html
    assert html.count('class="match"') == 4  # 3 first matches, and the 4th has invalid answers
    assert "<details><summary>view</summary>" in html
    assert (md_path.parent / "returns.png").exists() and "![" in md and "](returns.png)" in md
    assert "Tournament" not in md and "Training" not in md


def test_an_agent_against_itself_is_reported_seat_by_seat(kuhn, tmp_path):
    """Pooled, always-bet against itself reads +0.000 in a zero-sum game; per seat it
    shows who wins the showdowns (the same cards decide both seats' results)."""
    store = RunStore(tmp_path / "run", create=True)
    store.start({"game": "kuhn_poker"})
    agent = FixedActionAgent("bet")
    play_matches(rotating_plan(kuhn, [agent, agent], range(40), 0), on_match_end=store.write_match)
    store.close()
    rows = table_after(read(write_report(tmp_path / "run"))[1], "## Results per agent")
    first, second = row_of(rows, "always_bet (seat 1)"), row_of(rows, "always_bet (seat 2)")
    assert first[1] == second[1] == "40" and first[2] == second[4] and first[4] == second[2]
    assert "always_bet" not in [row[0] for row in rows]  # no pooled row


def test_tournament_report_has_heat_map_and_ratings(kuhn, tmp_path):
    store = RunStore(tmp_path / "t", create=True)
    field = [FixedActionAgent("bet"), FixedActionAgent("pass"), RandomAgent()]
    run_tournament(kuhn, field, games_per_pair=4, store=store)
    store.close()

    html, md = read(write_report(tmp_path / "t", bootstrap=50))
    payoff = table_after(md, "### Payoff matrix")
    assert row_of(payoff, "always_bet")[2] == "+1.00 ± 0.00 (n=4)"
    assert row_of(payoff, "always_pass")[1] == "-1.00 ± 0.00 (n=4)"
    assert row_of(payoff, "always_bet")[1] == ""  # never played itself
    ratings = [r[0] for r in table_after(md, "### Ratings")]
    assert sorted(ratings) == ["always_bet", "always_pass", "random"]
    assert ratings.index("always_bet") < ratings.index("always_pass")
    assert (tmp_path / "t" / "report" / "payoff.png").exists()
    assert html.count('src="data:image/png;base64,') == 2  # returns and payoff heat map
    assert "12 of 12 matches finished" in md


def test_unfinished_tournament_says_what_is_missing(kuhn, tmp_path):
    store = RunStore(tmp_path / "t", create=True)
    run_tournament(kuhn, [FixedActionAgent("bet"), FixedActionAgent("pass")], 4, store=store)
    store.db.execute("DELETE FROM matches WHERE idx >= 2")
    store.db.commit()
    store.close()
    _, md = read(write_report(tmp_path / "t", bootstrap=20))
    assert "2 of 4 matches finished" in md and "2 matches are missing" in md


def test_training_run_report_from_its_log_tables(kuhn, tmp_path):
    pytest.importorskip("torch")
    from open_spiel.python import policy as os_policy

    from sparring.eval.exploitability import exploitability_report

    store = RunStore(tmp_path / "train", create=True)
    store.set_meta("kind", "train")
    store.set_meta("train_config", {"steps": 4, "game": "kuhn_poker"})
    for step, invalid in ((1, 0.5), (2, 0.25), (3, 0.125)):
        metrics = {"step": step, "games": 8, "samples": 16, "trained": 12, "loss": -0.1 * step,
                   "kl": 0.01, "mean_return": {"0": 0.1 * step, "1": -0.1}, "baselines": {},
                   "invalid_rate": invalid, "entropy": 1.5}
        store.write_train_step(step, metrics)
    summary = {"games": 16.0, "return": 0.25, "return_ci": 0.5, "win": 0.75, "win_ci": 0.2, "draw": 0.0,
               "draw_ci": 0.0, "win_or_draw": 0.75, "win_or_draw_ci": 0.2, "invalid": 0.0, "invalid_ci": 0.0}
    store.write_train_eval(2, "random", summary)
    uniform = exploitability_report(kuhn, os_policy.UniformRandomPolicy(kuhn.os_game))
    store.add_exploitability(uniform.entry(2, checkpoint="checkpoints/step-000002"))
    store.close()

    html, md = read(write_report(tmp_path / "train"))
    assert "3 logged steps, the last step 3 of 4 planned." in md
    assert "--resume" in md
    assert row_of(table_after(md, "### Evaluations"), "2") == ["2", "random", "0.750 ± 0.200", "+0.250 ± 0.500", "0.000"]
    per_step = table_after(md, "### Per step")
    assert [r[3] for r in per_step] == ["0.500", "0.250", "0.125"]  # invalid rate over steps
    # Uniform random play in Kuhn poker is exploitable by 11/24 = 0.4583 (DESIGN.md).
    expl = row_of(table_after(md, "## Exploitability over checkpoints"), "2")
    assert expl[1] == "checkpoints/step-000002" and expl[2] == "0.4583"
    for png in ("curves.png", "exploitability.png"):
        assert (tmp_path / "train" / "report" / png).exists()
    assert "Results per agent" not in md  # no matches were stored


def test_benchmark_report_from_meta(tmp_path):
    report = BenchmarkReport(
        benchmark="matrix2x2/nash", agent="random", metric="exact-match accuracy",
        overall=Estimate(0.5, 0.3, 0.7, 20),
        breakdowns={"family": {"win-win": Estimate(0.25, 0.1, 0.5, 8)}},
        invalid=3, forfeits=1, items=[{"game": "prisoners_dilemma", "correct": True}],
        notes=["a note on the metric"],
    )
    store = RunStore(tmp_path / "bench", create=True)
    store.set_meta("benchmark", report.to_dict())
    store.close()

    html, md = read(write_report(tmp_path / "bench"))
    rows = table_after(md, "## Benchmark matrix2x2/nash")
    assert rows == [["overall", "all", "0.500", "[0.300, 0.700]", "20"],
                    ["family", "win-win", "0.250", "[0.100, 0.500]", "8"]]
    assert "invalid answers: 3, forfeits: 1" in md and "a note on the metric" in html
    assert "prisoners_dilemma" in html
    assert list((tmp_path / "bench" / "report").glob("benchmark-*.png"))


def test_model_text_is_escaped_never_markup(tmp_path):
    evil = "<img src=x onerror=alert(2)>"
    completion = "<script>alert(1)</script> I choose <b>bet</b>"
    fenced = "```\n<script>alert(3)</script>\n```"  # tries to close the markdown fence
    result = MatchResult(
        index=0, game="kuhn_poker@1", seed=0, seats=(evil, "random"), returns=(1.0, -1.0),
        turns=(
            Turn(decision=0, attempt=0, seat=0, agent=evil, view="<i>your card</i>",
                 choice=Choice(action=None, completion=completion),
                 action_name=None, valid=False, reason="<b>no</b> answer"),
            Turn(decision=0, attempt=1, seat=0, agent=evil, view="<i>your card</i>",
                 choice=Choice(action=1, completion=fenced, message="</pre><script>x</script>"),
                 action_name="bet", valid=True),
            Turn(decision=1, attempt=0, seat=1, agent="random", view="", choice=Choice(action=0),
                 action_name="pass", valid=True),
        ),
    )
    store = RunStore(tmp_path / "evil", create=True)
    store.write_match(result)
    store.close()

    html, md = read(write_report(tmp_path / "evil"))
    assert "<script" not in html.lower() and "<b>" not in html and "<img src=x" not in html
    assert "<i>" not in html and "</pre><script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; I choose &lt;b&gt;bet&lt;/b&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    # Markdown: model text only inside fences longer than any backtick run in it.
    assert "````text\n" + fenced + "\n````" in md
    outside = re.sub(r"(`{3,})text\n.*?\n\1(?!`)", "", md, flags=re.S)
    assert "<script" not in outside and "<b>" not in outside and "<img" not in outside


def test_empty_or_unstarted_runs_say_what_is_missing(kuhn, tmp_path):
    RunStore(tmp_path / "empty", create=True).close()
    with pytest.raises(SparringError, match="no finished matches, training steps.*sparring play"):
        write_report(tmp_path / "empty")

    store = RunStore(tmp_path / "planned", create=True)
    store.set_meta("tournament", {"game": "kuhn_poker@1", "agents": ["a", "b", "c"], "mode": "round_robin",
                                  "games_per_pair": 4, "seed": 0, "rule": {}})
    store.close()
    with pytest.raises(SparringError, match="tournament of 12 matches, none finished.*sparring tournament"):
        write_report(tmp_path / "planned")

    store = RunStore(tmp_path / "training", create=True)
    store.set_meta("kind", "train")
    store.close()
    with pytest.raises(SparringError, match="training run with no finished step.*--resume"):
        write_report(tmp_path / "training")

    with pytest.raises(SparringError, match="no run at"):
        write_report(tmp_path / "nowhere")
