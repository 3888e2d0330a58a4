"""The board a replay draws after each step, for every game, over real run stores
played by the arena: checked against OpenSpiel's own account of the state, chips
counted by hand for a known betting sequence, the returns the arena recorded, and
the replay page and JSON that show it."""

import random
from dataclasses import replace

import pyspiel
import pytest
from dashboard_runs import SCRIPT, play_run

from sparring.agents.scripted import RandomAgent
from sparring.dashboard.replay import build_replay
from sparring.games.leduc_poker import card_name
from sparring.games.registry import make_game
from sparring.records import Choice
from sparring.store import RunStore

KUHN_CARDS = ("Jack", "Queen", "King")  # OpenSpiel's kuhn_poker deals cards 0, 1, 2
BARGAINING = "bargaining(counts=[1,2,3],values=[[4,0,2],[1,3,1]])"


class ScriptedAgent:
    """Plays the named moves in order, each with its message."""

    def __init__(self, name: str, moves: list[tuple[str, str | None]]):
        self.name = name
        self.moves = list(moves)

    def act(self, decisions):
        choices = []
        for d in decisions:
            move, message = self.moves.pop(0)
            by_name = {d.state.action_name(a): a for a in d.state.legal_actions()}
            choices.append(Choice(action=by_name[move], message=message))
        return choices

    def close(self) -> None:
        pass


def _random_pair():
    return [RandomAgent("random"), RandomAgent("random-2")]


# run name -> (game, matches, the agents per seat of match 0)
RUNS = {
    "tictactoe": ("tictactoe", 1, _random_pair),
    "connect_four": ("connect_four", 2, _random_pair),
    "kuhn": ("kuhn_poker", 6, _random_pair),
    "kuhn-scripted": ("kuhn_poker", 1, lambda: [ScriptedAgent("p1", [("pass", None), ("bet", None)]),
                                                 ScriptedAgent("p2", [("bet", None)])]),
    "leduc": ("leduc_poker", 4, _random_pair),
    "leduc-scripted": ("leduc_poker", 1, lambda: [ScriptedAgent("p1", [("raise", None), ("raise", None)]),
                                                   ScriptedAgent("p2", [("call", None), ("call", None)])]),
    "liars_dice": ("liars_dice(numdice=2)", 4, _random_pair),
    "bargaining": (BARGAINING, 1, lambda: [ScriptedAgent("p1", [("propose 1 2 0", f"I keep the hats {SCRIPT}")]),
                                           ScriptedAgent("p2", [("accept", "deal")])]),
    "matrix": ("matrix(preset=stag_hunt,rounds=3)", 2, _random_pair),
    "nim": ("openspiel:nim", 2, _random_pair),
}
KINDS = {"tictactoe": "grid", "connect_four": "grid", "kuhn": "poker", "kuhn-scripted": "poker", "leduc": "poker",
         "leduc-scripted": "poker", "liars_dice": "dice", "bargaining": "bargaining", "matrix": "matrix", "nim": "text"}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("board-runs")
    for name, (game, matches, agents) in RUNS.items():
        play_run(root / name, game, matches, agents=agents())
    return root


@pytest.fixture(scope="module")
def client(root):
    from starlette.testclient import TestClient

    from sparring.dashboard.app import create_app
    from sparring.dashboard.runs import RunsRoot

    return TestClient(create_app(RunsRoot.at(root)), base_url="http://127.0.0.1", raise_server_exceptions=False)


def replay_of(root, name: str, index: int = 0):
    store = RunStore(root / name, read_only=True)
    try:
        return build_replay(store.match(index), store.turns(index))
    finally:
        store.close()


def rules_states(replay):
    """The live state after each step, played again from the match's seed (its
    `os_state` is OpenSpiel's own)."""
    state = make_game(replay.match.game).new_initial_state(random.Random(replay.match.seed))
    for step in replay.steps:
        if step.turn.valid:
            state.apply(step.turn.action, step.turn.choice.message if state.spec.messages else None)
        yield step, state


def test_a_tictactoe_grid_marks_each_move_as_openspiel_does(root):
    replay = replay_of(root, "tictactoe")
    os_state = pyspiel.load_game("tic_tac_toe").new_initial_state()  # no chance: the stored moves rebuild it
    for step in replay.steps:
        if step.turn.valid:
            os_state.apply_action(step.turn.action)
        cells = "".join(os_state.observation_string(0).split())  # "x.o......", row by row
        assert [c for row in step.board.rows for c in row] == [{"x": "X", "o": "O", ".": ""}[c] for c in cells]
        assert step.board.marked == (divmod(step.turn.action, 3) if step.turn.valid else None)
        assert step.board.numbered and not step.board.discs
    assert replay.final_board == replace(replay.steps[-1].board, marked=None)


@pytest.mark.parametrize("index", range(2))
def test_a_connect_four_grid_is_openspiels_after_every_step_with_the_dropped_disc_marked(root, index):
    replay = replay_of(root, "connect_four", index)
    os_state = pyspiel.load_game("connect_four").new_initial_state()
    for step in replay.steps:
        before = os_state.observation_string(0).split()  # top row first
        if step.turn.valid:
            os_state.apply_action(step.turn.action)
        after = os_state.observation_string(0).split()
        assert step.board.rows == tuple(tuple({"x": "X", "o": "O", ".": ""}[c] for c in row) for row in after)
        dropped = [(r, c) for r in range(6) for c in range(7) if before[r][c] != after[r][c]]
        assert [step.board.marked] == dropped and dropped[0][1] == step.turn.action
    assert replay.final_board.column_names == tuple("1234567") and replay.final_board.marked is None


def test_kuhn_chips_follow_a_known_betting_and_the_showdown_goes_to_the_higher_card(root):
    replay = replay_of(root, "kuhn-scripted")
    # ante 1 each; pass adds nothing; bet, or a call of a bet, adds 1
    assert [s.board.chips for s in replay.steps] == [(1, 1), (1, 2), (2, 2)]
    board = replay.final_board
    assert board.pot == 4 and board.public_card is None
    assert [[(b.player, b.action) for b in r] for r in board.rounds] == [[(0, "pass"), (1, "bet"), (0, "bet")]]
    ranks = [KUHN_CARDS.index(c.name) for c in board.private_cards]
    assert replay.match.returns[ranks.index(max(ranks))] == 2  # a called bet: the higher card wins both chips


@pytest.mark.parametrize("index", range(6))
def test_kuhn_cards_are_openspiels_deal_and_chips_are_antes_plus_bets(root, index):
    replay = replay_of(root, "kuhn", index)
    for step, state in rules_states(replay):
        board = step.board
        assert [c.name for c in board.private_cards] == [
            KUHN_CARDS[int(state.os_state.information_state_string(p)[0])] for p in (0, 1)]
        bets = [b.player for r in board.rounds for b in r if b.action == "bet"]
        assert board.chips == (1 + bets.count(0), 1 + bets.count(1)) and board.pot == sum(board.chips)


def test_leduc_chips_follow_a_known_betting_and_the_public_card_opens_round_two(root):
    replay = replay_of(root, "leduc-scripted")
    # ante 1; a raise matches and adds 2 in round 1, 4 in round 2; a call matches
    assert [s.board.chips for s in replay.steps] == [(3, 1), (3, 3), (7, 3), (7, 7)]
    assert [s.board.public_card is not None for s in replay.steps] == [False, True, True, True]
    board = replay.final_board
    assert board.pot == 14
    assert [[(b.player, b.action) for b in r] for r in board.rounds] == [[(0, "raise"), (1, "call")],
                                                                         [(0, "raise"), (1, "call")]]
    assert sorted(replay.match.returns) in ([-7, 7], [0, 0])


@pytest.mark.parametrize("index", range(4))
def test_leduc_cards_and_pot_are_openspiels_after_every_step(root, index):
    replay = replay_of(root, "leduc", index)
    for step, state in rules_states(replay):
        os_state, board = state.os_state, step.board
        assert [c.name for c in board.private_cards] == [card_name(os_state.private_card(p)) for p in (0, 1)]
        public = os_state.public_card()  # negative until dealt
        assert (board.public_card.name if board.public_card else None) == (card_name(public) if public >= 0 else None)
        assert board.chips == tuple(state.chips_in()) and board.pot == sum(board.chips)
        if not os_state.is_terminal():  # OpenSpiel empties the pot into the winner's money at the end
            assert board.pot == os_state.pot()
        assert board.private_cards[0].short[-1] in "\u2660\u2665"


@pytest.mark.parametrize("index", range(4))
def test_liars_dice_shows_openspiels_dice_and_the_bids_decide_the_result(root, index):
    replay = replay_of(root, "liars_dice", index)
    for step, state in rules_states(replay):
        rolled = [sorted(map(int, state.os_state.information_state_string(p).split()[0])) for p in (0, 1)]
        assert [list(d) for d in step.board.dice] == rolled
    board = replay.final_board
    played = [(s.turn.seat, s.turn.action_name) for s in replay.steps if s.turn.valid]
    assert [(b.player, b.bid) for b in board.bids] == played and played[-1][1] == "liar"
    # the challenged bid NxF holds if at least N dice show F, sixes wild: then its bidder wins
    count, face = map(int, board.current_bid.bid.split("x"))
    shown = sum(1 for faces in board.dice for d in faces if d in (face, board.wild))
    winner = board.current_bid.player if shown >= count else 1 - board.current_bid.player
    assert replay.match.returns[winner] == 1


def test_bargaining_shows_the_pool_values_offers_and_messages(root):
    replay = replay_of(root, "bargaining")
    first, last = replay.steps[0].board, replay.final_board
    assert first.pool == (1, 2, 3) and first.values == ((4, 0, 2), (1, 3, 1)) and first.turns_left == 5
    offer, accept = last.offers
    assert (offer.player, offer.action, offer.keeps, offer.gives) == (0, "propose 1 2 0", (1, 2, 0), (0, 0, 3))
    # Player 1 keeps a book (4) and two hats (0); Player 2 gets three balls (1 each)
    assert offer.worth == (4, 3) == tuple(replay.match.returns)
    assert offer.message == f"I keep the hats {SCRIPT}" and (accept.action, accept.message) == ("accept", "deal")
    assert last.turns_left == 0


@pytest.mark.parametrize("index", range(2))
def test_a_matrix_game_shows_each_round_and_totals_the_recorded_returns(root, index):
    replay = replay_of(root, "matrix", index)
    names = [s.turn.action_name for s in replay.steps if s.turn.valid]
    board = replay.final_board
    assert [r.actions for r in board.rounds] == list(zip(names[::2], names[1::2]))
    assert board.totals == tuple(replay.match.returns) and board.round_count == 3
    assert board.payoffs == (((4, 4), (0, 3)), ((3, 0), (2, 2)))  # stag hunt: both hunting stag pays most
    first, second = replay.steps[0].board, replay.steps[1].board
    assert (first.pending, first.rounds, first.last) == (names[0], (), None)
    assert second.pending is None and second.last == tuple(board.actions.index(n) for n in names[:2])


@pytest.mark.parametrize("index", range(2))
def test_another_openspiel_game_shows_openspiels_own_text_of_the_state(root, index):
    replay = replay_of(root, "nim", index)
    os_state = pyspiel.load_game("nim").new_initial_state()
    for step in replay.steps:
        if step.turn.valid:
            os_state.apply_action(step.turn.action)
        assert step.board.text == str(os_state)
    assert replay.final_board.text == str(os_state) and os_state.is_terminal()


def test_a_match_the_rules_cannot_replay_has_no_board(root):
    store = RunStore(root / "connect_four", read_only=True)
    match, turns = store.match(0), store.turns(0)
    store.close()
    replay = build_replay(replace(match, game="kuhn_poker@1"), turns)  # columns 0-6 are no Kuhn moves
    assert replay.note and replay.final_board is None and all(s.board is None for s in replay.steps)


@pytest.mark.parametrize("name", RUNS)
def test_the_replay_page_and_json_draw_the_board_at_every_step(client, root, name):
    page = client.get(f"/run/{name}/match/0").text
    steps = len(replay_of(root, name).steps)
    assert page.count(f'<div class="drawing" data-board="{KINDS[name]}">') == steps + 1  # each turn and the result
    turns = client.get(f"/api/run/{name}/match/0").json()["turns"]
    assert [t["board"]["kind"] for t in turns] == [KINDS[name]] * steps


@pytest.mark.parametrize(("name", "markup"), [
    ("tictactoe", '<table class="board" aria-label="board">'),
    ("connect_four", '<table class="board discs" aria-label="board">'),
    ("connect_four", '<tr class="names"><th>1</th>'),
    ("kuhn-scripted", 'pot <strong>4</strong> chips'),
    ("kuhn-scripted", '<span class="bet">Player 2 bet</span>'),
    ("leduc-scripted", '<span class="public">public card <span class="card'),
    ("liars_dice", '<strong class="current-bid">'),
    ("bargaining", 'keeps 1 book, 2 hats, 0 balls; Player 2 gets 0 books, 0 hats, 3 balls (worth 4 to Player 1, 3 to Player 2)'),
    ("bargaining", '<q class="said">I keep the hats &lt;script&gt;window.pwned=1&lt;/script&gt;</q>'),
    ("matrix", '<th class="corner">Player 1 \\ Player 2</th><th>stag</th><th>hare</th>'),
    ("nim", '<pre class="view state-text">('),
])
def test_the_replay_page_draws_each_kind_of_board(client, name, markup):
    page = client.get(f"/run/{name}/match/0").text
    assert markup in page
    assert "<script>window" not in page


def test_a_tictactoe_page_draws_the_marks_the_numbered_empty_cells_and_the_cell_just_marked(client, root):
    first = replay_of(root, "tictactoe").steps[0].turn.action
    step = client.get("/run/tictactoe/match/0").text.split('id="turn-1"')[1].split('id="turn-2"')[0]
    assert step.count('<td class="x marked">X</td>') == 1 and step.count('<td class="empty">') == 8
    assert all(f'<td class="empty">{cell + 1}</td>' in step for cell in range(9) if cell != first)
