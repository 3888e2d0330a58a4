"""The board of a game state, as the replay page draws it: a small frozen record
per kind of board, read from the rules' own state (the game's state object and the
OpenSpiel state under it), so no rule of a game is written twice.

A replay is for spectators, so each board shows what every player holds: both
poker cards, both players' dice, both players' item values, and the row player's
hidden choice in a round of a matrix game. Each player's own view is shown beside
it, as the rules gave it to them.

Kinds: `Grid` (tic-tac-toe, connect four), `Poker` (Kuhn, Leduc), `Dice` (liar's
dice), `Bargaining`, `Matrix` (repeated 2x2 games) and `Text` (any other OpenSpiel
game: OpenSpiel's own account of the whole state). `kind` names each for the
template and the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from open_spiel.python.observation import make_observation

from sparring.games.bargaining import ITEMS, BargainingState
from sparring.games.connect_four import ConnectFourState
from sparring.games.core import State
from sparring.games.kuhn_poker import CARDS, KuhnPokerState
from sparring.games.leduc_poker import LeducPokerState, card_name
from sparring.games.liars_dice import SIDES, LiarsDiceState
from sparring.games.matrix import MatrixState
from sparring.games.openspiel import OpenSpielState
from sparring.games.tictactoe import TicTacToeState

SUIT_SYMBOLS = {"spades": "\u2660", "hearts": "\u2665"}  # Leduc's two suits


@dataclass(frozen=True)
class Grid:
    """Marks on a grid of cells, top row first."""

    rows: tuple[tuple[str, ...], ...]  # each cell's mark ("X", "O"), or "" when empty
    marked: tuple[int, int] | None  # (row, column) of the mark this step placed
    numbered: bool  # an empty cell shows its number, as players name it (tic-tac-toe's 1-9)
    column_names: tuple[str, ...]  # names under the columns, as players name them; () for none
    discs: bool  # marks drawn as discs dropped into columns (connect four) rather than letters
    kind: str = field(default="grid", init=False)


@dataclass(frozen=True)
class Card:
    name: str  # "Queen of hearts"
    short: str  # "Q\u2665"
    suit: str  # "spades", "hearts", or "" where the deck has one suit (Kuhn)


@dataclass(frozen=True)
class Bet:
    player: int  # the seat that acted, from 0
    action: str  # as the players name it: pass, bet, fold, call, raise


@dataclass(frozen=True)
class Poker:
    """A poker table: every player's private card, the public card, the chips."""

    private_cards: tuple[Card, ...]  # one per player
    public_card: Card | None  # Leduc's, once the first round is over
    chips: tuple[int, ...]  # each player's chips in the pot, antes included
    pot: int
    rounds: tuple[tuple[Bet, ...], ...]  # the betting so far, round by round
    kind: str = field(default="poker", init=False)


@dataclass(frozen=True)
class Bid:
    player: int
    bid: str  # "2x3" (at least two dice show a 3) or "liar"


@dataclass(frozen=True)
class Dice:
    """Liar's dice: every player's dice and the bidding."""

    dice: tuple[tuple[int, ...], ...]  # each player's faces, ascending
    bids: tuple[Bid, ...]  # in order, a "liar" challenge last
    current_bid: Bid | None  # the standing bid
    wild: int  # the face that counts as every face
    kind: str = field(default="dice", init=False)


@dataclass(frozen=True)
class Offer:
    player: int
    action: str  # "propose 1 0 2", "accept" or "walk"
    keeps: tuple[int, ...] | None  # a proposal: what its proposer keeps of each item kind
    gives: tuple[int, ...] | None  # and what the other player gets
    worth: tuple[int, ...] | None  # what the proposed split is worth to each player
    message: str | None  # what the player said with it


@dataclass(frozen=True)
class Bargaining:
    """The item pool, every player's values, and the offers and messages so far."""

    items: tuple[str, ...]  # item kinds: book, hat, ball
    pool: tuple[int, ...]  # how many of each kind
    values: tuple[tuple[int, ...], ...]  # values[player][kind]
    offers: tuple[Offer, ...]
    turns_left: int
    kind: str = field(default="bargaining", init=False)


@dataclass(frozen=True)
class Round:
    actions: tuple[str, str]  # the row player's, the column player's
    payoffs: tuple[float, float]


@dataclass(frozen=True)
class Matrix:
    """A repeated 2x2 game: the payoff table and the joint plays so far."""

    actions: tuple[str, str]  # both players choose between these
    payoffs: tuple[tuple[tuple[float, float], ...], ...]  # [row action][column action] -> (row's, column's)
    rounds: tuple[Round, ...]
    totals: tuple[float, float]
    round_count: int  # rounds in the match
    last: tuple[int, int] | None  # (row action, column action) of the last round played
    pending: str | None  # the row player's choice this round, hidden from the column player
    kind: str = field(default="matrix", init=False)


@dataclass(frozen=True)
class Text:
    """OpenSpiel's own account of the whole state (`str(state)`)."""

    text: str
    kind: str = field(default="text", init=False)


Board = Grid | Poker | Dice | Bargaining | Matrix | Text


def draw(state: State, moved: bool) -> Board | None:
    """The board of `state`; `moved` says whether the step that led to it played a
    move (a grid highlights it). None for a game with no board here."""
    if isinstance(state, TicTacToeState):
        return tictactoe_grid(state, moved)
    if isinstance(state, ConnectFourState):
        return connect_four_grid(state, moved)
    if isinstance(state, (KuhnPokerState, LeducPokerState)):
        return poker_table(state)
    if isinstance(state, LiarsDiceState):
        return dice_table(state)
    if isinstance(state, BargainingState):
        return bargaining_table(state)
    if isinstance(state, MatrixState):
        return matrix_table(state)
    if isinstance(state, OpenSpielState):  # any other OpenSpiel game: after its subclasses above
        return Text(str(state.os_state))
    return None


def tictactoe_grid(state: TicTacToeState, moved: bool) -> Grid:
    cells = ["" if cell.isdigit() else cell for cell in state.board()]  # board() numbers the empty cells
    marked = divmod(state.history[-1][1], 3) if moved and state.history else None
    return Grid(rows=tuple(tuple(cells[row * 3:row * 3 + 3]) for row in range(3)), marked=marked,
                numbered=True, column_names=(), discs=False)


def connect_four_grid(state: ConnectFourState, moved: bool) -> Grid:
    rows = tuple(tuple("" if cell == "." else cell for cell in row) for row in reversed(state.grid()))
    marked = None
    if moved and state.history:
        column = state.history[-1][1]
        marked = (next(r for r, row in enumerate(rows) if row[column]), column)  # the top disc of its column
    return Grid(rows=rows, marked=marked, numbered=False,
                column_names=tuple(state.action_name(c) for c in range(len(rows[0]))), discs=True)


def poker_table(state: KuhnPokerState | LeducPokerState) -> Poker:
    """Kuhn deals cards 0-2 (Jack, Queen, King), Leduc 0-5 (rank c // 2, suit c % 2),
    each player's card first, then Leduc's public card; the chips each player has
    put in are OpenSpiel's own count (its observer's `pot_contribution`)."""
    players = state.spec.players
    card = _leduc_card if isinstance(state, LeducPokerState) else _kuhn_card
    observation = make_observation(state.game.os_game)
    observation.set_from(state.os_state, 0)
    chips = tuple(int(c) for c in observation.dict["pot_contribution"])
    # Leduc's second round begins where its public card fell.
    public_at = state.chance_turn[players] if len(state.chance) > players else None
    moves = [Bet(player, name) for player, _, name in state.history]
    rounds = (moves,) if public_at is None else (moves[:public_at], moves[public_at:])
    return Poker(private_cards=tuple(card(c) for c in state.chance[:players]),
                 public_card=card(state.chance[players]) if public_at is not None else None,
                 chips=chips, pot=sum(chips), rounds=tuple(tuple(r) for r in rounds))


def _kuhn_card(card: int) -> Card:
    return Card(name=CARDS[card], short=CARDS[card][0], suit="")


def _leduc_card(card: int) -> Card:
    name = card_name(card)  # "Queen of hearts"
    suit = name.split()[-1]
    return Card(name=name, short=name[0] + SUIT_SYMBOLS[suit], suit=suit)


def dice_table(state: LiarsDiceState) -> Dice:
    bids = tuple(Bid(player, name) for player, _, name in state.history)
    standing = [b for b in bids if b.bid != "liar"]
    return Dice(dice=tuple(tuple(state.dice(p)) for p in range(state.spec.players)), bids=bids,
                current_bid=standing[-1] if standing else None, wild=SIDES)


def bargaining_table(state: BargainingState) -> Bargaining:
    offers = []
    for turn in state.turns:
        keeps = gives = worth = None
        if turn.action >= 2:  # a proposal (accept and walk are 0 and 1)
            keeps = state.proposal_of(turn.action)
            gives = state.rest(keeps)
            got = {turn.player: keeps, 1 - turn.player: gives}
            worth = tuple(state.value_of(p, got[p]) for p in range(2))
        offers.append(Offer(turn.player, turn.name, keeps, gives, worth, turn.message))
    return Bargaining(items=ITEMS, pool=tuple(state.counts), values=tuple(tuple(v) for v in state.values),
                      offers=tuple(offers), turns_left=0 if state.is_terminal() else state.game.max_turns - len(state.turns))


def matrix_table(state: MatrixState) -> Matrix:
    names = state.game.preset.actions
    rounds = tuple(Round((names[row], names[col]), tuple(state.payoff(row, col))) for row, col in state.rounds)
    return Matrix(actions=tuple(names), payoffs=tuple(tuple(tuple(state.payoff(r, c)) for c in (0, 1)) for r in (0, 1)),
                  rounds=rounds, totals=(sum((r.payoffs[0] for r in rounds), 0.0), sum((r.payoffs[1] for r in rounds), 0.0)),
                  round_count=state.game.num_rounds, last=state.rounds[-1] if state.rounds else None,
                  pending=None if state.pending is None else names[state.pending])
