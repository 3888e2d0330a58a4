"""The compare page: several runs' curves on one chart each, checked against the
numbers the test wrote into the runs' stores; names that try to leave the runs
directory, too few or too many runs, and runs with nothing to draw."""

import html
import re

import pytest
from dashboard_runs import train_run

from sparring.dashboard.compare import COLORS, MAX_RUNS, NOTHING_TO_DRAW
from sparring.records import ExploitabilityEntry
from sparring.store import RunStore

MARKUP = "<img src=x onerror=alert(1)>"  # a run directory whose name holds markup
B_STEPS = (10, 20, 30)
B_LOSS = (0.9, 0.6, 0.3)
B_RETURNS = ((0.2, -0.2), (0.4, -0.4), (0.5, -0.5))
B_ONLY = (7.0, 8.0, 9.0)


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """A root of its own: run `a` as the dashboard tests' training run (steps 1-5),
    run `b` with its own steps, evaluation and exploitability, a run named with
    markup, a play run with no curves, and a link that leads out of the root."""
    from starlette.testclient import TestClient

    from sparring.dashboard.app import create_app
    from sparring.dashboard.runs import RunsRoot

    root = tmp_path_factory.mktemp("compare")
    train_run(root / "a", 5).close()
    b = RunStore(root / "b", create=True)
    for step, loss, (first, second), only in zip(B_STEPS, B_LOSS, B_RETURNS, B_ONLY):
        b.write_train_step(step, {"step": step, "loss": loss, "mean_return": {"0": first, "1": second}, "b_only": only})
    b.write_train_eval(20, "greedy", {"return": 0.4, "return_ci": 0.05})
    b.add_exploitability(ExploitabilityEntry(step=30, exploitability=0.2, nash_conv=0.4, mode="exact", game="kuhn_poker@1"))
    b.close()
    marked = RunStore(root / MARKUP, create=True)
    marked.write_train_step(1, {"step": 1, "loss": 0.5})
    marked.close()
    play = RunStore(root / "play", create=True)
    play.start({"game": "tictactoe", "games": 2}, kind="play")
    play.close()
    outside = tmp_path_factory.mktemp("outside")
    RunStore(outside, create=True).close()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    return TestClient(create_app(RunsRoot.at(root)), base_url="http://127.0.0.1", raise_server_exceptions=False)


def runs(*names: str) -> list[tuple[str, str]]:
    return [("run", name) for name in names]


def test_each_chart_holds_a_trace_per_run_with_the_points_each_run_logged(compared):
    body = compared.get("/api/compare", params=runs("a", "b")).json()
    figures = {f["id"]: f for f in body["figures"]}
    loss = figures["chart-loss"]["data"]
    assert [t["name"] for t in loss] == ["a", "b"]
    assert loss[0]["x"] == [1, 2, 3, 4, 5] and loss[0]["y"] == pytest.approx([1 / s for s in range(1, 6)])
    assert loss[1]["x"] == list(B_STEPS) and loss[1]["y"] == pytest.approx(B_LOSS)
    # a dictionary metric: a trace per run and key
    returns = figures["chart-return"]["data"]
    assert [t["name"] for t in returns] == ["a: seat 1", "a: seat 2", "b: seat 1", "b: seat 2"]
    assert returns[1]["y"] == pytest.approx([-0.1 * s for s in range(1, 6)])
    assert returns[2]["y"] == pytest.approx([r[0] for r in B_RETURNS]) and returns[3]["x"] == list(B_STEPS)
    # a run's own colour on every trace of it
    assert {t["line"]["color"] for t in returns[:2]} == {COLORS[0]} and returns[2]["line"]["color"] == COLORS[1]
    assert [r["color"] for r in body["runs"]] == [COLORS[0], COLORS[1]]
    # a metric only one run logged: its chart says whose it is
    only = next(f for f in body["figures"] if f["title"] == "b_only")
    assert [t["name"] for t in only["data"]] == ["b"] and only["data"][0]["y"] == list(B_ONLY)
    assert only["layout"]["showlegend"] is True


def test_evaluations_and_exploitability_keep_their_error_bars(compared):
    figures = {f["id"]: f for f in compared.get("/api/compare", params=runs("a", "b")).json()["figures"]}
    evaluation = figures["chart-eval-0"]["data"]
    assert [t["name"] for t in evaluation] == ["a: vs random", "b: vs greedy"]
    assert evaluation[0]["y"] == [-0.2, 0.1] and evaluation[0]["error_y"]["array"] == [0.15, 0.15]
    assert evaluation[1]["x"] == [20] and evaluation[1]["error_y"]["array"] == [0.05]
    assert [t["name"] for t in figures["chart-eval-1"]["data"]] == ["a: vs random"]  # only `a` measured win-or-draw
    exploitability = figures["chart-exploitability"]["data"]
    assert [t["name"] for t in exploitability] == ["a", "b"]
    assert exploitability[0]["y"] == [0.45, 0.3] and exploitability[1]["y"] == [0.2]
    assert exploitability[0]["error_y"]["array"] == [None, pytest.approx(0.06)]
    assert exploitability[0]["error_y"]["arrayminus"] == [None, pytest.approx(0.05)]


def test_charts_come_in_the_order_of_a_runs_page_whichever_run_logged_them(compared):
    """`b_only` is logged by the second run alone: it joins the other metrics, before the evaluations."""
    figures = compared.get("/api/compare", params=runs("a", "b")).json()["figures"]
    assert [f["id"] for f in figures] == [
        "chart-loss", "chart-return", "chart-invalid", "chart-entropy", "chart-kl", "chart-lr", "chart-time",
        *(f"chart-metric-{n}" for n in range(7)), "chart-eval-0", "chart-eval-1", "chart-eval-2",
        "chart-exploitability"]
    metrics = [f["title"] for f in figures if f["id"].startswith("chart-metric-")]
    evaluations = [f["title"] for f in figures if f["id"].startswith("chart-eval-")]
    assert evaluations == [f"evaluation: {m} with 95% intervals" for m in ("return", "win-or-draw rate",
                                                                          "invalid answer rate")]
    assert metrics == ["games", "samples", "trained", "clip_frac", "grad_norm", "pool_win_rate", "b_only"]
    single = compared.get("/api/run/a/training").json()["figures"]
    assert [f["title"] for f in figures if f["title"] != "b_only"] == [f["title"] for f in single]


def test_run_names_with_markup_are_escaped(compared):
    escaped = html.escape(MARKUP)
    figures = compared.get("/api/compare", params=runs("a", MARKUP)).json()["figures"]
    assert [t["name"] for t in figures[0]["data"]] == ["a", escaped]
    page = compared.get("/compare", params=runs("a", MARKUP))
    assert page.status_code == 200 and "<img src=x" not in page.text
    assert html.escape(MARKUP, quote=False) in page.text


def test_the_page_lists_the_runs_and_polls_its_own_json(compared):
    page = compared.get("/compare", params=runs("a", "b")).text
    assert 'data-name="a"' in page and 'data-name="b"' in page and f"background: {COLORS[1]}" in page
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []  # no inline script: the page's policy forbids it
    api = html.unescape(re.search(r'data-api="([^"]+)"', page).group(1))
    assert api == "/api/compare?run=a&run=b"
    assert compared.get(api).status_code == 200


def test_a_run_with_nothing_to_draw_is_said_so_not_refused(client):
    page = client.get("/compare", params=runs("play/kuhn", "train/live"))
    assert page.status_code == 200
    row = page.text.split('data-name="play/kuhn"')[1].split("</li>")[0]
    assert NOTHING_TO_DRAW in row
    body = client.get("/api/compare", params=runs("play/kuhn", "train/live")).json()
    assert [r["note"] for r in body["runs"]] == [NOTHING_TO_DRAW, None]
    names = {t["name"].split(":")[0] for f in body["figures"] for t in f["data"]}
    assert names == {"train/live"} and len(body["figures"]) > 5


def test_an_unreadable_store_says_why_beside_its_name(client):
    page = client.get("/compare", params=runs("broken", "train/live"))
    assert page.status_code == 200 and "damaged" in page.text.split('data-name="broken"')[1].split("</li>")[0]
    body = client.get("/api/compare", params=runs("broken", "train/live")).json()
    assert "damaged" in body["runs"][0]["note"] and body["runs"][0]["status"] == "unreadable"


@pytest.mark.parametrize("name", ["..", "../..", "/etc", "nothing-here", "play", "play/kuhn/run.sqlite", ""])
def test_a_name_that_names_no_run_is_refused_as_on_a_run_page(client, runs_root, name):
    for url in ("/compare", "/api/compare"):
        response = client.get(url, params=runs("train/live", name))
        assert response.status_code == 404, (url, response.text)
    message = client.get("/api/compare", params=runs("train/live", name)).json()["error"]
    assert message == f"no run named {name!r} under {runs_root.resolve()}"


def test_a_link_out_of_the_root_is_refused(compared):
    assert compared.get("/compare", params=runs("a", "escape")).status_code == 404
    assert compared.get("/api/compare", params=runs("a", "escape")).status_code == 404


@pytest.mark.parametrize("names", [(), ("train/live",), ("train/live", "train/live"), ("train/live", "train/../train/live")])
def test_fewer_than_two_runs_asks_for_two_and_links_back(client, names):
    page = client.get("/compare", params=runs(*names))  # a page that says what to do: no failed load in the browser
    assert page.status_code == 200 and "pick two or more runs" in page.text and 'href="/" id="back"' in page.text
    assert 'id="charts"' not in page.text
    answer = client.get("/api/compare", params=runs(*names))
    assert answer.status_code == 400 and "pick two or more runs" in answer.json()["error"]


def test_more_runs_than_the_cap_are_refused_with_the_cap(client):
    names = [f"run-{n}" for n in range(MAX_RUNS + 1)]  # refused by their number before any is looked up
    page = client.get("/compare", params=runs(*names))
    assert page.status_code == 200 and f"at most {MAX_RUNS}" in page.text and 'href="/" id="back"' in page.text
    assert client.get("/api/compare", params=runs(*names)).status_code == 400


def test_unchanged_stores_answer_not_modified(client):
    first = client.get("/api/compare", params=runs("play/kuhn", "train/live"))
    again = client.get("/api/compare", params=runs("play/kuhn", "train/live"),
                       headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_the_runs_page_has_a_box_per_run_that_sends_it_to_compare(client):
    page = client.get("/").text
    assert '<form id="compare-form" action="/compare" method="get">' in page and 'id="compare-selected"' in page
    boxes = re.findall(r'<input type="checkbox" class="pick" name="run" value="([^"]+)" form="compare-form"', page)
    assert sorted(boxes) == sorted(re.findall(r'<tr data-name="([^"]+)"', page)) and len(boxes) >= 7
