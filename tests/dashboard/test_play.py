"""The play page through the app: a person plays a reference agent or a stored
checkpoint move by move, and the match is stored like any other play run (the
same turns the arena writes, a replay page, the runs list). Bad settings and
posts from other sites are refused before anything is written."""

import random
import re
import time

import pytest
from dashboard_runs import play_run

from sparring.games.registry import make_game
from sparring.store import RunStore


@pytest.fixture
def root(tmp_path):
    play_run(tmp_path / "old/kuhn", "kuhn_poker", 2)
    return tmp_path


@pytest.fixture
def client(root):
    from starlette.testclient import TestClient

    from sparring.dashboard.app import create_app
    from sparring.dashboard.runs import RunsRoot

    with TestClient(create_app(RunsRoot.at(root)), base_url="http://127.0.0.1",
                    raise_server_exceptions=False) as client:
        yield client


def start(client, **fields):
    response = client.post("/play", data=fields, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def wait_for(client, url, status, seconds=120):
    """The match page once it shows `status` (a model or a solver may take a while to load)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        page = client.get(url)
        if f'data-status="{status}"' in page.text:
            return page
        assert 'data-status="failed"' not in page.text, page.text
        time.sleep(0.05)
    raise AssertionError(f"{url} never reached {status}: {page.text}")


def moves_of(page):
    """The question number and the (action, label) of every move button."""
    question = int(re.search(r'name="question" value="(\d+)"', page.text).group(1))
    return question, re.findall(r'name="action" value="(\d+)" class="move">([^<]*)<', page.text)


def test_a_person_plays_tictactoe_against_random_and_the_match_is_stored_with_their_moves(client, root):
    url = start(client, game="tictactoe", opponent="random", seat="1", seed="7")
    played = []
    while True:
        page = client.get(url)
        while 'data-status="waiting"' in page.text or 'data-status="starting"' in page.text:
            time.sleep(0.05)
            page = client.get(url)
        if 'data-status="over"' in page.text:
            break
        question, moves = moves_of(page)
        legal = {int(a) for a, _ in moves}
        action = min(legal)  # the lowest free cell
        played.append(action)
        answer = client.post(f"{url}/move", data={"question": question, "action": action}, follow_redirects=False)
        assert answer.status_code == 303 and "error" not in answer.headers["location"]
    replay_link = re.search(r'id="replay" href="([^"]+)"', page.text).group(1)
    run_dir = root / replay_link.split("/run/")[1].rsplit("/match/", 1)[0]
    store = RunStore(run_dir, read_only=True)
    match, turns = store.match(0), store.turns(0)
    store.close()
    assert match.seats == ("human", "random")
    assert [t.action for t in turns if t.agent == "human"] == played
    # the stored moves replay to the stored result under the rules
    state = make_game(match.game).new_initial_state(random.Random(match.seed))
    for turn in turns:
        state.apply(turn.action)
    assert state.is_terminal() and tuple(state.returns()) == match.returns
    assert client.get(replay_link).status_code == 200
    assert run_dir.relative_to(root).as_posix() in client.get("/").text


def test_a_stale_or_illegal_move_is_refused_and_changes_nothing(client):
    url = start(client, game="tictactoe", opponent="random", seat="1", seed="1")
    page = wait_for(client, url, "your move")
    question, moves = moves_of(page)
    for fields in ({"question": question + 1, "action": moves[0][0]}, {"question": question, "action": 99},
                   {"question": question, "action": "x"}):
        answer = client.post(f"{url}/move", data=fields, follow_redirects=True)
        assert 'id="problem"' in answer.text and 'data-status="your move"' in answer.text
        assert moves_of(answer) == (question, moves)  # still the same question


def test_the_play_page_offers_the_runs_checkpoints_and_refuses_paths_outside_the_runs_directory(client, root, tmp_path_factory):
    outside = tmp_path_factory.mktemp("outside")
    (outside / "policy.json").write_text("{}")
    (root / "old/kuhn/nash").mkdir()
    (root / "old/kuhn/nash/members.json").write_text("{}")
    form = client.get("/play")
    assert "old/kuhn/nash" in form.text
    for opponent, words in ((str(outside), "no agent"), ("../" + outside.name, "no agent"), ("human", "you are the human"),
                            ("nobody", "unknown agent"), ("random(", "closed with")):
        page = client.post("/play", data={"game": "kuhn_poker", "opponent": opponent, "seat": "1"})
        assert page.status_code == 400 and words in page.text, (opponent, page.text)
    for game, words in (("chess_nope", "unknown game"), ("openspiel:goofspiel(players=3)", "3 players")):
        page = client.post("/play", data={"game": game, "opponent": "random", "seat": "1"})
        assert page.status_code == 400 and words in page.text.lower(), page.text
    assert not (root / "play").exists()  # nothing written for a refused start


def test_a_post_from_another_site_is_refused(client, root):
    page = client.post("/play", data={"game": "tictactoe", "opponent": "random"},
                       headers={"origin": "http://evil.example"})
    assert page.status_code == 403 and not (root / "play").exists()
    page = client.post("/play", data={"game": "tictactoe", "opponent": "random"},
                       headers={"sec-fetch-site": "cross-site", "origin": "null"})
    assert page.status_code == 403 and not (root / "play").exists()


def test_play_is_off_for_a_dashboard_of_one_run_and_off_the_loopback(root):
    from starlette.testclient import TestClient

    from sparring.dashboard.app import create_app
    from sparring.dashboard.runs import RunsRoot

    for app in (create_app(RunsRoot.at(root / "old/kuhn")), create_app(RunsRoot.at(root), play_off="play is off: x")):
        client = TestClient(app, base_url="http://127.0.0.1")
        assert 'id="problem"' in client.get("/play").text
        assert client.post("/play", data={"game": "tictactoe", "opponent": "random"}).status_code == 403
    assert not (root / "play").exists()


def test_a_cfr_opponent_plays_kuhn_poker_as_the_second_seat(client, root):
    url = start(client, game="kuhn_poker", opponent="cfr(iterations=200)", seat="2", seed="3")
    page = wait_for(client, url, "your move")
    while 'data-status="over"' not in page.text:
        question, moves = moves_of(page)
        client.post(f"{url}/move", data={"question": question, "action": moves[0][0]})
        page = client.get(url)
        while re.search(r'data-status="(waiting|starting)"', page.text):
            time.sleep(0.05)
            page = client.get(url)
    assert re.search(r"Player 2 \(human\): <strong>[+-]\d", page.text)
