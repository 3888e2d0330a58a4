"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) over a
real server and real run stores: the runs list, a training curve that grows while
a writer process adds steps, a replay stepped with the keyboard, model text that
tries to run script shown as text, game boards, two runs compared, and a match a
person plays in the play page, found in the store. Screenshots of each page go to
the test's tmp_path."""

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from dashboard_runs import IMAGE, SCRIPT, build_runs, play_run, train_run

from sparring.store import RunStore

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is not installed "
                               "(it is in the test extra: pip install -e '.[test]')")
CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The dashboard on a free loopback port, in a thread, over its own runs (the
    training run here grows during a test)."""
    import uvicorn

    from sparring.dashboard.app import create_app
    from sparring.dashboard.runs import RunsRoot
    from sparring.dashboard.server import bind

    root = tmp_path_factory.mktemp("browser-runs")
    build_runs(root)
    sock = bind("127.0.0.1", 0)
    served = uvicorn.Server(uvicorn.Config(create_app(RunsRoot.at(root)), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=served.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not served.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served.started, "the dashboard did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", root
    served.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A page that records every script error and console error: the test fails on any."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    yield page
    page.close()
    assert errors == []


def test_the_runs_page_lists_sorts_and_filters_the_runs(server, page, tmp_path):
    url, _ = server
    page.goto(url + "/")
    names = page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(row => row.dataset.name)")
    assert sorted(names) == ["broken", "evolve/e1", "malicious", "old", "play/kuhn", "play/tictactoe", "train/live"]
    page.click("#runs th:nth-child(6)")  # matches, ascending
    ascending = page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(row => row.dataset.name)")
    assert ascending[-1] == "play/kuhn"  # six matches, the most
    page.fill("#filter", "kuhn_poker")
    visible = page.eval_on_selector_all("#runs tbody tr:not([hidden])", "rows => rows.map(row => row.dataset.name)")
    assert visible == ["play/kuhn"]
    page.fill("#filter", "")
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)


POINTS = "() => { const div = document.getElementById('chart-loss'); return div && div.data ? div.data[0].x.length : 0; }"


def test_a_training_curve_grows_while_the_run_writes(server, page, tmp_path):
    url, root = server
    page.goto(url + "/run/train/live")
    page.wait_for_function(f"() => ({POINTS})() >= 5")
    assert page.evaluate(POINTS) == 5
    assert page.evaluate("() => document.getElementById('chart-eval-0').data[0].error_y.array") == [0.15, 0.15]
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(root / "train" / "live")],
                              cwd=Path(__file__).parent)
    try:
        page.wait_for_function(f"() => ({POINTS})() >= 9", timeout=20000)
    finally:
        writer.terminate()
        writer.wait(10)
    assert page.text_content("#status") == "running"
    assert page.evaluate("() => document.querySelectorAll('#charts .chart').length") >= 10
    page.screenshot(path=str(tmp_path / "training.png"), full_page=True)


# What a trainer does, in a process of its own: a step every 0.3 s through its own store.
WRITER = """
import sys, time
from dashboard_runs import step_metrics
from sparring.store import RunStore
store = RunStore(sys.argv[1])
for step in range(6, 40):
    time.sleep(0.3)
    store.write_train_step(step, step_metrics(step))
"""


def _current(page) -> str:
    return page.evaluate("() => document.querySelector('section.turn.current').id")


def test_a_replay_steps_with_the_keyboard_and_links_to_a_turn(server, page, tmp_path):
    url, _ = server
    page.goto(url + "/run/malicious/match/1")
    turns = page.evaluate("() => Number(document.getElementById('stepper').dataset.steps)") - 1
    assert _current(page) == "turn-1" and page.text_content("#position") == f"turn 1 of {turns}"
    page.keyboard.press("ArrowRight")
    assert _current(page) == "turn-2" and page.evaluate("() => location.hash") == "#turn-2"
    assert page.is_visible("#turn-2") and not page.is_visible("#turn-1")
    page.keyboard.press("End")
    assert _current(page) == f"turn-{turns + 1}" and page.text_content("#position").startswith("result")
    page.keyboard.press("ArrowRight")  # past the end stays at the end
    assert _current(page) == f"turn-{turns + 1}"
    page.keyboard.press("Home")
    page.keyboard.press("ArrowLeft")  # before the start stays at the start
    assert _current(page) == "turn-1"
    page.goto(url + "/run/malicious/match/1#turn-3")
    assert _current(page) == "turn-3"
    page.goto(url + "/run/malicious/match/1?turn=4")
    assert _current(page) == "turn-4"
    forced = page.eval_on_selector_all(".outcome.forced .what", "nodes => nodes.map(n => n.textContent)")
    assert forced and all(text.startswith("random move after invalid answers") for text in forced)
    page.screenshot(path=str(tmp_path / "replay.png"), full_page=True)


def test_model_text_that_tries_to_run_script_is_shown_as_text(server, page, tmp_path):
    url, _ = server
    completions = []
    for index in (0, 1):
        page.goto(url + f"/run/malicious/match/{index}")
        completions += page.eval_on_selector_all("pre.completion", "nodes => nodes.map(n => n.textContent)")
        assert page.evaluate("() => window.pwned") is None
        assert page.evaluate("() => document.querySelectorAll('main img, main script, main b').length") == 0
    assert any(SCRIPT in text for text in completions) and any(IMAGE in text for text in completions)
    page.goto(url + "/run/malicious/match/0#turn-2")
    page.screenshot(path=str(tmp_path / "malicious.png"), full_page=True)
    page.goto(url + "/run/evolve/e1")
    assert "Critic says " + IMAGE in page.text_content("#evolution")
    assert page.evaluate("() => window.pwned") is None
    page.screenshot(path=str(tmp_path / "evolution.png"), full_page=True)


def test_replays_draw_a_connect_four_grid_and_a_poker_table(server, page, tmp_path):
    url, root = server
    play_run(root / "boards" / "connect_four", "connect_four", 1)
    page.goto(url + "/run/boards/connect_four/match/0")
    page.keyboard.press("ArrowRight")  # after the second disc
    current = "section.turn.current .drawing[data-board=grid] table.board.discs"
    assert page.locator(f"{current} td.marked .disc").count() == 1
    assert page.locator(f"{current} .disc").count() == 2 and page.locator(f"{current} tr.names th").count() == 7
    page.screenshot(path=str(tmp_path / "connect-four.png"), full_page=True)
    page.goto(url + "/run/play/kuhn/match/0")
    page.keyboard.press("End")
    table = "section.turn.current .drawing[data-board=poker]"
    assert page.locator(f"{table} .hand .card").count() == 2
    pot = int(page.text_content(f"{table} .pot strong"))
    coins = sum(page.locator(f"{table} .hand[data-player='{p}'] .stake .coin").count() for p in (1, 2))
    assert pot == coins >= 2  # both antes at least
    page.screenshot(path=str(tmp_path / "poker.png"), full_page=True)


def test_two_training_runs_are_compared_on_one_chart(server, page, tmp_path):
    url, root = server
    train_run(root / "train" / "other", 7).close()
    page.goto(url + "/")
    page.check('#runs input.pick[value="train/live"]')
    page.check('#runs input.pick[value="train/other"]')
    assert page.text_content("#compare-selected").strip() == "compare selected (2)"
    page.click("#compare-selected")
    page.wait_for_function("() => { const d = document.getElementById('chart-loss'); return d && d.data && d.data.length === 2; }")
    names = page.evaluate("() => document.getElementById('chart-loss').data.map(t => t.name)")
    points = page.evaluate("() => document.getElementById('chart-loss').data.map(t => t.x.length)")
    assert sorted(names) == ["train/live", "train/other"]
    assert points[names.index("train/other")] == 7 and points[names.index("train/live")] >= 5  # it grew earlier
    page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)


def test_a_person_plays_a_match_in_the_browser_and_it_is_stored(server, page, tmp_path):
    """Last in this file: it adds a run under the root that the runs-page test does not expect."""
    url, root = server
    page.goto(url + "/play")
    page.fill("input[name=game]", "tictactoe")
    page.fill("input[name=opponent]", "random")
    page.fill("input[name=seed]", "5")
    page.screenshot(path=str(tmp_path / "play-form.png"), full_page=True)
    page.click("#start")
    clicked = []
    for _ in range(10):
        page.wait_for_selector('#play-status[data-status="your move"], #play-status[data-status="over"]', timeout=20000)
        if page.get_attribute("#play-status", "data-status") == "over":
            break
        if not clicked:
            page.screenshot(path=str(tmp_path / "play-move.png"), full_page=True)
        button = page.locator("button.move").first
        clicked.append(int(button.get_attribute("value")))
        button.click()
    page.screenshot(path=str(tmp_path / "play-over.png"), full_page=True)
    replay = page.get_attribute("#replay", "href")
    run_dir = root / replay.split("/run/")[1].rsplit("/match/", 1)[0]
    store = RunStore(run_dir, read_only=True)
    try:
        human = [t.action for t in store.turns(0) if t.agent == "human"]
    finally:
        store.close()
    assert human == clicked and clicked
    page.click("#replay")
    assert page.locator("section.turn h2", has_text="(human)").count() == len(clicked)
