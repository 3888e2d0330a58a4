"""The 144 strict ordinal 2x2 games (Robinson & Goforth 2005, "The Topology of the
2x2 Games: A New Periodic Table"), generated from their definition.

A strict ordinal 2x2 game gives each player a strict ranking of the four outcomes:
payoffs are a permutation of the ranks 1 (worst) .. 4 (best) for each player, so
24 x 24 = 576 payoff tables. Relabelling a player's two actions (swapping the rows,
or swapping the columns) does not change the game; with strict ranks no table is
fixed by a non-trivial relabelling, so the group of these 4 relabellings splits the
576 tables into exactly 576 / 4 = 144 games. This is Robinson and Goforth's count:
they keep the row and column roles apart. Identifying also games that differ only
by swapping the players gives Rapoport and Guyer's (1966) 78 = (144 + 12) / 2,
where 12 games are symmetric.

Orientation (one table per game): the row player's best outcome is in the left
column and the column player's best outcome is in the top row, so the first action
of each player ("A") is the one under which the *other* player can get its best
outcome. Under this convention the textbook prisoner's dilemma, stag hunt and
chicken read as usual, with cooperate / stag / swerve as A. Games are numbered
1..144 in the lexicographic order of (row ranks, column ranks) in this orientation;
the numbers are ours, not Robinson and Goforth's.

Cells are numbered 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right, i.e.
cell = 2 * row action + column action: the order of `sparring.games.matrix`
payoff lists (AA, AB, BA, BB).

Families follow the payoff families of Bruns ("Navigating the topology of 2x2
games", arXiv:1010.4727, 2010; "Names for games: locating 2x2 games", Games 6, 2015),
which sort the games by the payoffs the players get at the pure Nash equilibria.
We state the rule we apply exactly (`family_of`), in this order:

    cyclic       no pure Nash equilibrium (best replies chase each other round)
    win-win      an equilibrium gives both players their best outcome (4, 4)
    inferior     every equilibrium is Pareto-dominated by another outcome (the
                 prisoner's-dilemma family: the stable outcome is worse for both)
    otherwise, from the Pareto-optimal equilibrium that is best for the worse-off
    player (ties broken by the sum of ranks), with ranks (hi, lo):
    biased       (4, 3): one player gets its best, the other its second best
    second-best  (3, 3): both get their second-best outcome
    unfair       any other split, (4, 2) or (3, 2) among the 144 games: one player
                 does clearly better than the other at the stable outcome

The split is win-win 36, biased 44, second-best 12, unfair 27, inferior 7,
cyclic 18 (`family_counts`; the test pins it). Win-win is exactly Robinson and
Goforth's layer where both best outcomes fall in one cell (6 x 6 = 36 games), and
the 18 cyclic games are the 18 without a pure equilibrium; 108 games have one pure
equilibrium and 18 have two.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

from sparring.errors import SparringError

CELL_NAMES = ("top-left", "top-right", "bottom-left", "bottom-right")
FAMILIES = ("win-win", "biased", "second-best", "unfair", "inferior", "cyclic")

Ranks = tuple[int, int, int, int]  # one player's rank (1..4) at cells 0..3


@dataclass(frozen=True)
class OrdinalGame:
    """One of the 144 games, in the orientation described in the module docstring."""

    number: int  # 1..144
    row: Ranks  # the row player's ranks at cells 0..3
    col: Ranks  # the column player's ranks at cells 0..3
    family: str
    nash: frozenset[int]  # cells that are pure Nash equilibria
    name: str | None = None  # a textbook name, where the game has one

    @property
    def payoffs(self) -> tuple[tuple[int, int], ...]:
        """(row, column) payoff pairs for cells 0..3: the `matrix` game's format."""
        return tuple(zip(self.row, self.col))

    @property
    def label(self) -> str:
        return f"g{self.number:03d}" + (f" ({self.name})" if self.name else "")


def pure_nash(row: Ranks, col: Ranks) -> frozenset[int]:
    """Cells where neither player gains by changing only its own action."""
    cells = set()
    for r, c in itertools.product((0, 1), repeat=2):
        cell = 2 * r + c
        row_ok = row[cell] >= row[2 * (1 - r) + c]
        col_ok = col[cell] >= col[2 * r + (1 - c)]
        if row_ok and col_ok:
            cells.add(cell)
    return frozenset(cells)


def family_of(row: Ranks, col: Ranks) -> str:
    """The payoff family of a strict ordinal game (rule in the module docstring)."""
    nash = pure_nash(row, col)
    if not nash:
        return "cyclic"
    if any(row[c] == 4 and col[c] == 4 for c in nash):
        return "win-win"

    def dominated(cell: int) -> bool:
        return any(row[o] > row[cell] and col[o] > col[cell] for o in range(4))

    optimal = [c for c in nash if not dominated(c)]
    if not optimal:
        return "inferior"
    best = max(optimal, key=lambda c: (min(row[c], col[c]), row[c] + col[c]))
    ranks = tuple(sorted((row[best], col[best]), reverse=True))
    if ranks == (4, 3):
        return "biased"
    if ranks == (3, 3):
        return "second-best"
    return "unfair"


# -- relabelling and orientation ------------------------------------------------------


def _relabel(ranks: Ranks, swap_rows: bool, swap_cols: bool) -> Ranks:
    """Ranks after renaming the row player's and/or the column player's actions."""
    out = [0, 0, 0, 0]
    for r, c in itertools.product((0, 1), repeat=2):
        out[2 * (r ^ swap_rows) + (c ^ swap_cols)] = ranks[2 * r + c]
    return tuple(out)


def orient(row: Ranks, col: Ranks) -> tuple[Ranks, Ranks, tuple[bool, bool]]:
    """The oriented table of a game and the relabelling (swap_rows, swap_cols) that
    produced it: the row player's 4 goes to the left column (a column swap) and the
    column player's 4 to the top row (a row swap). The two choices are independent,
    which is why each game has exactly one oriented table."""
    swap_cols = row.index(4) % 2 == 1
    swap_rows = col.index(4) // 2 == 1
    return _relabel(row, swap_rows, swap_cols), _relabel(col, swap_rows, swap_cols), (swap_rows, swap_cols)


def ordinal_ranks(values) -> Ranks:
    """Ranks 1..4 of four distinct numbers (1 = smallest); ties are refused."""
    values = [float(v) for v in values]
    if len(values) != 4 or len(set(values)) != 4:
        raise SparringError(
            f"a strict ordinal 2x2 game needs four different payoffs per player, got {values}"
        )
    order = sorted(values)
    return tuple(order.index(v) + 1 for v in values)


# -- the catalogue ----------------------------------------------------------------------

# Textbook games as (row, column) payoff pairs at cells 0..3, ranks 1..4. Any
# orientation is accepted: `find_game` orients them first.
KNOWN_GAMES: dict[str, tuple[tuple[int, int], ...]] = {
    # T > R > P > S: cooperate is A.
    "prisoner's dilemma": ((3, 3), (1, 4), (4, 1), (2, 2)),
    # Mutual stag best for both; hare safe.
    "stag hunt": ((4, 4), (1, 3), (3, 1), (2, 2)),
    # Crash is the worst outcome for both.
    "chicken": ((3, 3), (2, 4), (4, 2), (1, 1)),
    # Coordinate on one of two meetings; each prefers its own; the two
    # miscoordinations ranked 2 and 1 (Luce & Raiffa's ordinal form).
    "battle of the sexes": ((4, 3), (2, 2), (1, 1), (3, 4)),
    # Defection dominant and mutual defection best for both: no dilemma.
    "deadlock": ((2, 2), (1, 4), (4, 1), (3, 3)),
    # Cooperation dominant and best for both.
    "harmony": ((4, 4), (2, 3), (3, 2), (1, 1)),
}


@cache
def all_games() -> tuple[OrdinalGame, ...]:
    """The 144 games, numbered 1..144."""
    names = {}
    for name, table in KNOWN_GAMES.items():
        row, col, _ = orient(tuple(p[0] for p in table), tuple(p[1] for p in table))
        names[(row, col)] = name
    perms = list(itertools.permutations((1, 2, 3, 4)))
    rows = [p for p in perms if p.index(4) % 2 == 0]  # row's 4 in the left column
    cols = [p for p in perms if p.index(4) // 2 == 0]  # column's 4 in the top row
    games = []
    for number, (row, col) in enumerate(sorted(itertools.product(rows, cols)), 1):
        games.append(OrdinalGame(
            number=number, row=row, col=col, family=family_of(row, col),
            nash=pure_nash(row, col), name=names.get((row, col)),
        ))
    return tuple(games)


def find_game(payoffs) -> tuple[OrdinalGame, tuple[bool, bool]]:
    """The catalogue game of any strict 2x2 table given as four (row, column) payoff
    pairs (real values are reduced to ranks), and the relabelling (swap_rows,
    swap_cols) that maps the given table's cells onto the catalogue game's cells."""
    pairs = [tuple(p) for p in payoffs]
    row, col, swaps = orient(ordinal_ranks(p[0] for p in pairs), ordinal_ranks(p[1] for p in pairs))
    for game in all_games():
        if game.row == row and game.col == col:
            return game, swaps
    raise AssertionError("unreachable: every oriented strict table is in the catalogue")


def map_cell(cell: int, swaps: tuple[bool, bool]) -> int:
    """A cell of a table under the relabelling `swaps` (an involution)."""
    swap_rows, swap_cols = swaps
    return 2 * ((cell // 2) ^ swap_rows) + ((cell % 2) ^ swap_cols)


def family_counts() -> dict[str, int]:
    counts = {f: 0 for f in FAMILIES}
    for game in all_games():
        counts[game.family] += 1
    return counts
