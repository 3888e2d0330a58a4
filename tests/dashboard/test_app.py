"""The dashboard's app through its test client: the pages over real run stores,
URLs that try to leave the runs directory, the JSON the pages poll, and model text
shown as text."""

import hashlib
import json
import math
import os

import pytest
from dashboard_runs import IMAGE, MODEL, SCRIPT

from sparring.dashboard.runs import run_url


def test_the_runs_page_lists_every_run_with_its_kind_games_agents_and_matches(client):
    page = client.get("/")
    assert page.status_code == 200
    rows = {name: page.text.split(f'data-name="{name}"')[1].split("</tr>")[0]
            for name in ("play/tictactoe", "play/kuhn", "train/live", "evolve/e1", "malicious", "broken", "old")}
    assert ">play<" in rows["play/kuhn"] and "kuhn_poker@1" in rows["play/kuhn"]
    assert "random, random-2" in rows["play/kuhn"] and 'data-sort="6"' in rows["play/kuhn"]
    assert "6 of 6 matches" in rows["play/kuhn"]
    assert ">train<" in rows["train/live"] and "5 of 100 steps" in rows["train/live"]
    assert "2 of 2 generations" in rows["evolve/e1"]
    assert "model&lt;b&gt;v1&lt;/b&gt;, random" in rows["malicious"]
    # stores a viewer cannot read say why, on their row
    assert "unreadable" in rows["broken"] and "damaged" in rows["broken"]
    assert "schema version 4" in rows["old"] and "sparring show" in rows["old"]


def test_the_runs_json_has_a_status_per_run(client, runs_root):
    runs = {r["name"]: r for r in client.get("/api/runs").json()}
    assert set(runs) == {"play/tictactoe", "play/kuhn", "train/live", "evolve/e1", "malicious", "broken", "old"}
    assert runs["play/kuhn"]["matches"] == 6 and runs["play/kuhn"]["agents"] == ["random", "random-2"]
    assert runs["broken"]["status"] == "unreadable" and runs["broken"]["error"]
    assert {r["status"] for r in runs.values() if not r["error"]} == {"running"}  # all written moments ago


@pytest.mark.parametrize("url", [
    "/run/%2e%2e", "/run/play/%2e%2e/%2e%2e", "/run/play%2F..%2F..", "/run//etc", "/run/%2Fetc",
    "/run/play", "/run/nothing-here", "/api/run/%2e%2e/training", "/api/run/..%2F..%2Fetc/match/0",
    "/run/%2e%2e/match/0", "/run/escape", "/run/escape/match/0", "/api/run/escape/training", "/run/linked-store",
])
def test_paths_that_leave_the_runs_directory_or_name_no_run_are_refused(client, runs_root, url):
    _links_out(runs_root)
    response = client.get(url)
    assert response.status_code == 404, response.text
    assert "outside-secret" not in response.text


def test_a_run_path_resolves_only_inside_the_root(runs_root):
    """What the URL's run path becomes, as the server sees it (a client would
    normalise a plain `..` away before sending it)."""
    from sparring.dashboard.runs import RunsRoot, UnknownRun

    _links_out(runs_root)
    root = RunsRoot.at(runs_root)
    assert root.resolve("play/kuhn") == runs_root.resolve() / "play" / "kuhn"
    assert root.resolve("play/../play/kuhn") == runs_root.resolve() / "play" / "kuhn"
    for name in ("..", "../..", "play/../..", "/etc", str(runs_root / "play" / "kuhn"), "escape", "linked-store",
                 "", "play", "\\etc", "play/kuhn/run.sqlite"):
        with pytest.raises(UnknownRun):
            root.resolve(name)


def _links_out(root):
    """A run outside the root, reachable through a symbolic link inside it, and a
    directory whose store is a link to that outside run's store."""
    outside = root.parent / "outside-secret"
    if not (root / "escape").exists():
        from sparring.store import RunStore

        RunStore(outside, create=True).close()
        (root / "escape").symlink_to(outside, target_is_directory=True)
        (root / "linked-store").mkdir()
        (root / "linked-store" / "run.sqlite").symlink_to(outside / "run.sqlite")


def test_links_out_of_the_root_are_not_listed(client, runs_root):
    _links_out(runs_root)
    names = {r["name"] for r in client.get("/api/runs").json()}
    assert "escape" not in names and "linked-store" not in names


def test_reading_never_changes_a_store(client, runs_root):
    """Every page of every run leaves each store's file as it was, and adds no file
    to the runs (no write-ahead log or shared memory for a store nobody writes)."""
    stores = sorted(runs_root.rglob("run.sqlite"))
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in stores if not p.is_symlink()}
    files_before = {p for p in runs_root.rglob("*")}
    for name in ("play/tictactoe", "malicious", "train/live", "evolve/e1", "broken", "old"):
        client.get(run_url(name))
        client.get(run_url(name, "match", 0))
        client.get("/api" + run_url(name) + "/training")
    client.get("/")
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before}
    assert after == before
    assert set(runs_root.rglob("*")) == files_before
    assert not list(runs_root.rglob("run.sqlite-*"))  # every writer closed: nothing beside the stores


def test_the_training_json_holds_every_curve_with_its_points(client):
    response = client.get("/api/run/train/live/training")
    assert response.status_code == 200
    body = json.loads(response.text)  # strict JSON: a NaN metric must arrive as null
    figures = {f["id"]: f for f in body["figures"]}
    assert figures["chart-loss"]["data"][0]["y"] == pytest.approx([1 / s for s in range(1, 6)])
    assert [t["name"] for t in figures["chart-return"]["data"]] == ["seat 1", "seat 2"]
    assert figures["chart-entropy"]["data"][0]["y"][1] is None  # logged as NaN at step 2
    assert [t["name"] for t in figures["chart-time"]["data"]] == ["generate_s", "train_s"]
    evaluation = figures["chart-eval-0"]["data"][0]
    assert evaluation["y"] == [-0.2, 0.1] and evaluation["error_y"]["array"] == [0.15, 0.15]
    exploitability = figures["chart-exploitability"]["data"][0]
    assert exploitability["y"] == [0.45, 0.3]
    assert exploitability["error_y"]["array"][1] == pytest.approx(0.06)
    assert exploitability["error_y"]["arrayminus"][1] == pytest.approx(0.05)
    assert body["progress"] == "5 of 100 steps"


def test_an_unchanged_store_answers_not_modified(client):
    first = client.get("/api/run/train/live/training")
    again = client.get("/api/run/train/live/training", headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_model_text_is_escaped_everywhere_on_a_replay(client):
    for index in (0, 1):
        page = client.get(f"/run/malicious/match/{index}").text
        assert "<script>window" not in page and "<img src=x" not in page and "<b>v1" not in page
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page
        assert "model&lt;b&gt;v1&lt;/b&gt;" in page
    assert "&lt;img src=x onerror=&#34;window.pwned=1&#34;&gt;" in client.get("/run/malicious/match/0").text
    assert "Critic says &lt;img" in client.get("/run/evolve/e1").text


def test_pages_forbid_inline_scripts(client):
    policy = client.get("/").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_a_replay_shows_every_attempt_rejections_random_moves_and_probabilities(client):
    data = client.get("/api/run/malicious/match/1").json()
    turns = data["turns"]
    assert turns[0]["agent"] == "random" and turns[0]["probability"] == pytest.approx(1 / 9)
    rejected = [t for t in turns if not t["valid"]]
    forced = [t for t in turns if t["forced"]]
    assert rejected and forced
    assert all(SCRIPT in t["outcome"] and t["choice"]["completion"] for t in rejected)
    assert forced[0]["outcome"].startswith("random move after invalid answers")
    retried = next(t for t in turns if t["attempt"] == 1 and not t["forced"] and t["agent"] == MODEL)
    assert retried["feedback"].startswith("That answer was rejected")
    assert len(data["final_views"]) == 2 and data["note"] is None
    # the board after each move, from the moves themselves
    played = [t for t in turns if t["valid"]]
    marks = {t["action"]: "XO"[t["seat"]] for t in played}
    assert [c or None for row in turns[-1]["board"]["rows"] for c in row] == [marks.get(i) for i in range(9)]
    page = client.get("/run/malicious/match/1?turn=3").text
    assert 'data-selected="3"' in page and 'id="turn-3"' in page and 'class="chip forced"' in page
    assert IMAGE not in page


def test_an_unknown_match_says_which_exist(client):
    response = client.get("/run/play/kuhn/match/99")
    assert response.status_code == 404
    assert "numbered 0 to 5" in response.text


def test_the_evolution_page_shows_generations_diffs_feedback_and_promotions(client):
    page = client.get("/run/evolve/e1").text
    assert "1 of 2 candidates promoted" in page and "12 won, 10 lost, 4 tied" in page
    assert '<span class="added">+- holding a king: bet</span>' in page
    assert "The agent folds kings." in page
    assert page.count('class="badge promote"') >= 2 and 'class="badge reject"' in page


def test_damaged_and_older_stores_say_so_on_their_page(client):
    for name, words in (("broken", "damaged"), ("old", "schema version 4")):
        page = client.get(run_url(name))
        assert page.status_code == 200 and words in page.text and "Traceback" not in page.text
        replay = client.get(run_url(name, "match", 0))
        assert words in replay.text and "Traceback" not in replay.text
    assert "damaged" in client.get("/api/run/broken/training").json()["error"]


def test_a_request_naming_another_host_is_refused(client):
    """A page on another site that points its own name at 127.0.0.1 (DNS rebinding)
    cannot read the runs."""
    assert client.get("/api/runs", headers={"host": "attacker.example"}).status_code == 400


def test_plotly_is_served_from_the_package(client):
    response = client.get("/static/plotly.min.js")
    assert response.status_code == 200 and b"plotly.js" in response.content[:2000]


def test_status_running_finished_interrupted_and_an_empty_log_is_not_writing(tmp_path):
    from sparring.dashboard.runs import StoreStamp
    from sparring.dashboard.summary import RunSummary

    summary = RunSummary("r", "train", (), (), 0, done=100, planned=100, unit="steps", size=0, modified=1000.0)
    assert summary.status(now=1030.0) == "running"
    assert summary.status(now=2000.0) == "finished"
    assert RunSummary("r", "train", (), (), 0, 40, 100, "steps", 0, 1000.0).status(now=2000.0) == "interrupted"
    (tmp_path / "run.sqlite").write_bytes(b"x")
    os.utime(tmp_path / "run.sqlite", (1000, 1000))
    (tmp_path / "run.sqlite-wal").write_bytes(b"")  # what a reader leaves behind
    assert StoreStamp.of(tmp_path).modified == 1000
    (tmp_path / "run.sqlite-wal").write_bytes(b"page")  # what a writer leaves
    assert StoreStamp.of(tmp_path).modified > 1000


def test_chart_numbers_are_finite_or_gaps():
    from sparring.dashboard.charts import number, training_figures

    assert [number(v) for v in (1, 2.5, math.nan, math.inf, True, "x", None)] == [1.0, 2.5, None, None, None, None, None]
    mirror = [{"step": i, "exploitability": 0.5 / (i + 1), "target_kl": 0.1, "logit_gaps": [1.0, 0.5]} for i in range(3)]
    figures = training_figures(mirror, [], [])
    assert [f["title"] for f in figures] == ["exploitability", "target_kl"]  # a list of numbers is no curve
    assert training_figures([], [], []) == []


def test_names_from_a_run_are_escaped_inside_charts():
    from sparring.dashboard.charts import eval_figures

    figure = eval_figures([{"step": 1, "opponent": SCRIPT, "return": 0.1, "return_ci": 0.2}])[0]
    assert figure["data"][0]["name"] == "vs &lt;script&gt;window.pwned=1&lt;/script&gt;"


def test_a_run_of_several_agents_shows_their_ratings_and_payoff_matrix(tmp_path):
    # In Kuhn poker always-bet wins every game against always-pass (+1: the passer
    # folds to each bet, whoever opens), so it must be rated first and the payoff
    # matrix must hold +1.00 and -1.00 with zero-width intervals.
    from starlette.testclient import TestClient

    from sparring.agents.scripted import FixedActionAgent, RandomAgent
    from sparring.arena.match import play_matches, rotating_plan
    from sparring.dashboard.app import create_app
    from sparring.dashboard.runs import RunsRoot
    from sparring.games.registry import make_game
    from sparring.store import RunStore

    game = make_game("kuhn_poker")
    bet, fold, rnd = FixedActionAgent("bet", game=game), FixedActionAgent("pass", game=game), RandomAgent()
    bet.name, fold.name = "always_bet", "always_pass"
    store = RunStore(tmp_path / "t", create=True)
    store.set_meta("kind", "tournament")
    plans = [(bet, fold, range(0, 10)), (bet, rnd, range(10, 20)), (fold, rnd, range(20, 30))]
    for a, b, indices in plans:
        play_matches(rotating_plan(game, [a, b], indices, run_seed=0), on_match_end=store.write_match)
    store.close()
    page = TestClient(create_app(RunsRoot.at(tmp_path)), base_url="http://127.0.0.1").get("/run/t").text
    ratings = page.split('id="standings"')[1]
    rows = ratings.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert "always_bet" in rows[0]  # best first
    payoff = ratings.split("Payoff matrix")[1]
    assert "+1.00 ± 0.00" in payoff and "-1.00 ± 0.00" in payoff
    # the heat map holds the same matrix: always_bet's +1 against always_pass, the
    # diagonal unplayed, and white at zero
    block = ratings.split('data-chart="heatmap-payoff">')[1].split("</script>")[0]
    heat = json.loads(block)["data"][0]
    agents = heat["y"]
    assert heat["zmid"] == 0 and heat["x"] == agents
    bet, passer = agents.index("always_bet"), agents.index("always_pass")
    assert heat["z"][bet][passer] == 1.0 and heat["z"][passer][bet] == -1.0 and heat["z"][bet][bet] is None
    assert heat["text"][bet][passer] == "+1.00 ± 0.00"


def test_a_population_shows_its_meta_game_as_a_heat_map(tmp_path):
    """Two tabular members whose meta-game entries are Kuhn's always-bet against
    always-pass (+1 / -1) and zero on the diagonal, as a population run stores them."""
    from starlette.testclient import TestClient

    from sparring.dashboard.app import create_app
    from sparring.dashboard.runs import RunsRoot
    from sparring.records import PopulationIteration, PopulationMember
    from sparring.store import RunStore

    store = RunStore(tmp_path / "p", create=True)
    store.set_meta("population_config", {"iterations": 1})
    store.add_member(PopulationMember(0, "bet<i>", None, {"0": {1: 1.0}}), {(0, 0): 0.0})
    store.add_member(PopulationMember(1, "pass", None, {"0": {0: 1.0}}), {(1, 0): -1.0, (0, 1): 1.0, (1, 1): 0.0},
                     {(1, 0): 0.1, (0, 1): 0.1})
    store.add_population_iteration(PopulationIteration(1, (1.0, 0.0), 0.5, 1.0))
    store.close()
    page = TestClient(create_app(RunsRoot.at(tmp_path)), base_url="http://127.0.0.1").get("/run/p").text
    assert '<script src="/static/heatmaps.js" defer></script>' in page
    heat = json.loads(page.split('data-chart="heatmap-metagame">')[1].split("</script>")[0])["data"][0]
    assert heat["y"] == ["bet&lt;i&gt;", "pass"] and heat["z"] == [[0.0, 1.0], [-1.0, 0.0]]
    assert heat["text"][1][0] == "-1.00 ± 0.10"
    assert "<i>" not in page


def test_the_match_list_filters_by_agent_and_outcome(client, runs_root):
    import re

    from sparring.arena.results import outcome
    from sparring.store import RunStore

    store = RunStore(runs_root / "play/kuhn", read_only=True)
    matches = store.matches()
    store.close()
    for show in ("win", "loss", "draw"):
        expected = [m.index for m in matches if outcome(m.returns, m.seat_of("random")) == show]
        page = client.get(run_url("play/kuhn"), params={"agent": "random", "show": show}).text
        section = page.split('id="matches"')[1]
        listed = [int(i) for i in re.findall(r'/run/play/kuhn/match/(\d+)"', section)]
        assert listed == expected, show
        assert f"{len(expected)} of {len(matches)} shown" in section or not expected
    page = client.get(run_url("malicious"), params={"agent": MODEL, "show": "invalid"}).text
    assert "2 of 2 shown" in page  # the model's every first answer is rejected
    page = client.get(run_url("malicious"), params={"agent": "random", "show": "invalid"}).text
    assert "0 of 2 shown" in page and "No match of this run passes the filter" in page
    assert "&lt;b&gt;v1&lt;/b&gt;" in page and "<b>v1</b>" not in page
    from sparring.dashboard.matchlist import MatchFilter

    assert MatchFilter("a b", "win").query(2) == "?agent=a+b&show=win&page=2"  # the pager keeps the filter
    assert MatchFilter.of({"show": "nonsense"}) == MatchFilter()


def test_a_replay_shows_illegal_and_unparsable_answers_apart_and_what_training_taught_each_turn(tmp_path):
    from starlette.testclient import TestClient

    from sparring.agents.scripted import RandomAgent
    from sparring.arena.match import InvalidMoveRule, play_matches, rotating_plan
    from sparring.dashboard.app import create_app
    from sparring.dashboard.runs import RunsRoot
    from sparring.games.registry import make_game
    from sparring.records import Choice
    from sparring.store import RunStore

    class Fumbler:
        """First a text with no move, then an answer line naming a cell that is not
        free (the rules refuse it), then the first free cell."""

        name = "fumbler"

        def act(self, decisions):
            out = []
            for d in decisions:
                legal = d.state.legal_actions()
                taken = next((c for c in range(9) if c not in legal), None)
                if d.attempt == 0:
                    out.append(Choice(action=None, completion="hmm, tough one", reason="it names no legal move"))
                elif d.attempt == 1 and taken is not None:
                    out.append(Choice(action=None, completion=f"Answer: {taken + 1}", reason="it names no legal move"))
                else:
                    out.append(Choice(action=legal[0], completion=f"Answer: {legal[0] + 1}"))
            return out

        def close(self):
            pass

    store = RunStore(tmp_path / "t", create=True)
    store.set_meta("train_config", {"steps": 1})
    plan = rotating_plan(make_game("tictactoe"), [Fumbler(), RandomAgent("random")], [0], 0)
    [result] = play_matches(plan, InvalidMoveRule(retries=2), on_match_end=store.write_match)
    played = [seq for seq, t in enumerate(result.turns) if t.agent == "fumbler" and t.valid]
    store.write_turn_signals(4, [(0, seq, 1.0, 0.25 * k) for k, seq in enumerate(played)])
    store.close()
    client = TestClient(create_app(RunsRoot.at(tmp_path)), base_url="http://127.0.0.1")
    steps = client.get("/api/run/t/match/0").json()["turns"]
    kinds = [(s["choice"]["completion"], s["rejected"]) for s in steps if not s["valid"]]
    assert ("hmm, tough one", "unparsable") in kinds and any(k == "illegal" for _, k in kinds)
    assert all(k == ("unparsable" if c == "hmm, tough one" else "illegal") for c, k in kinds)
    taught = {s["number"] - 1: s["signal"] for s in steps if s["signal"]}
    assert taught == {seq: {"step": 4, "reward": 1.0, "advantage": 0.25 * k} for k, seq in enumerate(played)}
    page = client.get("/run/t/match/0").text
    assert 'class="kind illegal"' in page and 'class="kind unparsable"' in page
    assert "trained at step 4: reward <strong>+1</strong>" in page and "advantage <strong>+0.250</strong>" in page
