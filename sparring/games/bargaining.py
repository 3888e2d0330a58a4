"""Bargaining over a pool of items with private valuations (Deal or No Deal,
Lewis et al. 2017, "Deal or No Deal? End-to-End Learning for Negotiation
Dialogues"). Own rules: OpenSpiel's `bargaining` has no free-text messages.

A pool holds books, hats and balls. Each player values each kind privately; both
value the whole pool at the same total (10 by default). Players alternate, Player 1
first: `propose B H L` (how many books, hats, balls the proposer keeps; the other
gets the rest), `accept` the other's standing proposal, or `walk` (both score 0).
Any turn may carry a free-text message for the other player. On acceptance each
scores the value of what they get; with no deal within `max_turns` both score 0.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from functools import cache

from sparring.errors import SparringError
from sparring.games.core import GameSpec

ITEMS = ("book", "hat", "ball")
ACCEPT, WALK = 0, 1  # proposals follow: 2 + mixed-radix index of the kept counts
DEFAULT_TOTAL = 10
DEFAULT_MAX_TURNS = 6
MAX_RANDOM_COUNT = 3  # sampled pools hold 1-3 of each kind, as in Lewis et al.
MAX_MESSAGE_CHARS = 300

SPEC = GameSpec(
    id="bargaining",
    version=1,
    name="Bargaining",
    players=2,
    perfect_information=False,
    chance=True,
    zero_sum=False,
    utility_range=(0.0, float(DEFAULT_TOTAL)),
    max_length=DEFAULT_MAX_TURNS,
    answer_format="Answer: <propose B H L, accept or walk>",
    messages=True,
)


@cache
def valuations(counts: tuple[int, ...], total: int) -> tuple[tuple[int, ...], ...]:
    """Every non-negative integer value vector worth `total` for this pool."""
    return tuple(
        v for v in itertools.product(range(total + 1), repeat=len(counts))
        if sum(c * x for c, x in zip(counts, v)) == total
    )


def _plural(n: int, item: str) -> str:
    return f"{n} {item}" + ("" if n == 1 else "s")


def _items(kept: tuple[int, ...]) -> str:
    return ", ".join(_plural(n, item) for n, item in zip(kept, ITEMS))


@dataclass
class Turn:
    player: int
    action: int
    name: str
    message: str | None


class BargainingState:
    def __init__(self, game: "BargainingGame", counts: tuple[int, ...], values: tuple[tuple[int, ...], ...]):
        self.spec = game.spec
        self.game = game
        self.counts = counts
        self.values = values  # values[player][kind]
        self.turns: list[Turn] = []
        # Every split, as counts the proposer keeps; the same all match long.
        self._proposal_ids = [self.proposal_action(k) for k in itertools.product(*(range(c + 1) for c in counts))]

    # -- actions ------------------------------------------------------------------

    def proposal_action(self, kept: tuple[int, ...]) -> int:
        radix = self.game.radix
        index = 0
        for k in kept:
            index = index * radix + k
        return 2 + index

    def proposal_of(self, action: int) -> tuple[int, ...]:
        radix, index, kept = self.game.radix, action - 2, []
        for _ in ITEMS:
            kept.append(index % radix)
            index //= radix
        return tuple(reversed(kept))

    def standing_proposal(self) -> tuple[int, tuple[int, ...]] | None:
        """(proposer, counts the proposer keeps) of the last turn, if it proposed."""
        if self.turns and self.turns[-1].action >= 2:
            last = self.turns[-1]
            return last.player, self.proposal_of(last.action)
        return None

    # -- the State protocol ------------------------------------------------------------

    def current_player(self) -> int:
        return -1 if self.is_terminal() else len(self.turns) % 2

    def is_terminal(self) -> bool:
        if not self.turns:
            return False
        return self.turns[-1].action in (ACCEPT, WALK) or len(self.turns) >= self.game.max_turns

    def legal_actions(self) -> list[int]:
        if self.is_terminal():
            return []
        fixed = [ACCEPT, WALK] if self.standing_proposal() else [WALK]
        return fixed + self._proposal_ids

    def action_name(self, action: int) -> str:
        if action == ACCEPT:
            return "accept"
        if action == WALK:
            return "walk"
        return "propose " + " ".join(map(str, self.proposal_of(action)))

    def apply(self, action: int, message: str | None = None) -> None:
        if self.is_terminal() or not (action in self._proposal_ids or action == WALK or (action == ACCEPT and self.standing_proposal())):
            raise ValueError(f"bargaining: action {action} is not legal here")
        if message is not None:
            message = " ".join(message.split())[:MAX_MESSAGE_CHARS] or None
        self.turns.append(Turn(self.current_player(), action, self.action_name(action), message))

    def agreement(self) -> tuple[int, tuple[int, ...]] | None:
        """(proposer, counts the proposer keeps) once a proposal was accepted."""
        if len(self.turns) >= 2 and self.turns[-1].action == ACCEPT:
            prev = self.turns[-2]
            return prev.player, self.proposal_of(prev.action)
        return None

    def returns(self) -> list[float]:
        deal = self.agreement()
        if deal is None:
            return [0.0, 0.0]
        proposer, kept = deal
        gets = {proposer: kept, 1 - proposer: self.rest(kept)}
        return [float(self.value_of(p, gets[p])) for p in (0, 1)]

    def rest(self, kept: tuple[int, ...]) -> tuple[int, ...]:
        """What the other player gets when one keeps `kept`."""
        return tuple(c - k for c, k in zip(self.counts, kept))

    # -- text -------------------------------------------------------------------------

    def values_line(self, player: int) -> str:
        worth = ", ".join(f"{item} {v}" for item, v in zip(ITEMS, self.values[player]))
        return f"Player {player + 1} (you) values each: {worth}"

    def value_of(self, player: int, got: tuple[int, ...]) -> int:
        return sum(v * n for v, n in zip(self.values[player], got))

    def view(self, player: int) -> str:
        n, who = self.game.max_turns, ("you", "they")
        pool = _items(self.counts)
        total = self.game.total
        lines = [
            f"Bargaining. You and the other player split a pool of {pool}. Each of you "
            "values the items differently and knows only your own values. Take turns: "
            '"propose B H L" offers that you keep B books, H hats and L balls and they get '
            'the rest; "accept" takes the other\'s last proposal; "walk" ends the game and '
            f"both score 0. If a proposal is accepted, each scores the value of the items they get. "
            f"With no deal after {n} turns in all, both score 0.",
            f"You are Player {player + 1}. {self.values_line(player)}. All items are worth {total} to you.",
        ]
        for i, turn in enumerate(self.turns, 1):
            me = turn.player == player
            line = f"Turn {i}: {who[0 if me else 1]} {turn.name}"
            if turn.action >= 2:
                kept = self.proposal_of(turn.action)
                mine = kept if me else self.rest(kept)
                line += f" (you would get {_items(mine)}, worth {self.value_of(player, mine)} to you)"
            if turn.message:
                line += f', saying: "{turn.message}"'
            lines.append(line)
        if self.is_terminal():
            ret = self.returns()[player]
            how = "deal" if self.agreement() else "walked away" if self.turns[-1].action == WALK else "no deal in time"
            lines.append(f"Game over ({how}). You score {ret:g}.")
            return "\n".join(lines)
        turn_no = len(self.turns) + 1
        if self.current_player() != player:
            lines.append(f"Turn {turn_no} of {n}. Waiting for the other player.")
            return "\n".join(lines)
        ranges = ", ".join(f"{letter} from 0 to {c}" for letter, c in zip("BHL", self.counts))
        lines.append(f"Turn {turn_no} of {n}, your turn." + (" It is the last turn." if turn_no == n else ""))
        lines.append("Legal actions:")
        lines.append(f"- propose B H L (what you keep; {ranges})")
        if self.standing_proposal():
            lines.append("- accept (take their last proposal)")
        lines.append("- walk (no deal, both score 0)")
        lines.append('You may first write one line "Message: <text>" to the other player.')
        example = "propose " + " ".join(str(c) for c in self.counts)
        lines.append(f'Answer with one line: "Answer: <action>", for example "Answer: {example}"')
        return "\n".join(lines)

    def private_info(self, player: int) -> list[str]:
        return [self.values_line(player)]

    def clone(self) -> "BargainingState":
        other = object.__new__(BargainingState)
        other.__dict__.update(self.__dict__)
        other.turns = list(self.turns)  # Turn objects are never mutated
        return other


class BargainingGame:
    def __init__(self, spec: GameSpec, counts, values, total: int, max_turns: int):
        self.spec = spec
        self.counts = counts  # None: sampled per match
        self.fixed_values = values  # None: sampled per match
        self.total = total
        self.max_turns = max_turns
        self.radix = (max(counts) if counts else MAX_RANDOM_COUNT) + 1

    def new_initial_state(self, rng: random.Random) -> BargainingState:
        counts = self.counts
        while counts is None:
            candidate = tuple(rng.randint(1, MAX_RANDOM_COUNT) for _ in ITEMS)
            if valuations(candidate, self.total):
                counts = candidate
        values = self.fixed_values
        if values is None:
            options = valuations(counts, self.total)
            first = rng.choice(options)
            # Every kind is worth something to someone, so no item is free to give away.
            second = rng.choice([v for v in options if all(a or b for a, b in zip(first, v))] or options)
            values = (first, second)
        return BargainingState(self, counts, values)


def make(
    counts: list | tuple | None = None,
    values: list | tuple | None = None,
    total: int = DEFAULT_TOTAL,
    max_turns: int = DEFAULT_MAX_TURNS,
) -> BargainingGame:
    """`counts=[1,2,3]` fixes the pool (books, hats, balls); `values=[[4,0,2],[1,3,1]]`
    fixes both players' values (each must add up to `total` over the pool)."""
    if not isinstance(max_turns, int) or max_turns < 1:
        raise SparringError(f"bargaining: max_turns must be a positive integer, got {max_turns!r}")
    if not isinstance(total, int) or total < 1:
        raise SparringError(f"bargaining: total must be a positive integer, got {total!r}")
    if counts is not None:
        counts = tuple(counts) if isinstance(counts, (list, tuple)) else ()
        if len(counts) != 3 or not all(isinstance(c, int) and 1 <= c <= 9 for c in counts):
            raise SparringError("bargaining: counts must be 3 integers from 1 to 9 (books, hats, balls), e.g. counts=[1,2,3]")
        if values is None and not valuations(counts, total):
            raise SparringError(f"bargaining: no integer values make the pool {list(counts)} worth {total}; change counts or total")
    if values is not None:
        if counts is None:
            raise SparringError("bargaining: fixed values need fixed counts too, e.g. counts=[1,2,3],values=[[4,0,2],[1,3,1]]")
        ok = isinstance(values, (list, tuple)) and len(values) == 2 and all(
            isinstance(v, (list, tuple)) and len(v) == 3 and all(isinstance(x, int) and x >= 0 for x in v) for v in values
        )
        if not ok:
            raise SparringError("bargaining: values must be two lists of 3 non-negative integers, e.g. values=[[4,0,2],[1,3,1]]")
        values = tuple(tuple(v) for v in values)
        worth = [sum(c * x for c, x in zip(counts, v)) for v in values]
        if worth != [total, total]:
            raise SparringError(f"bargaining: with counts {list(counts)} the values are worth {worth}; both must be worth total={total}")
    params = tuple(
        (k, v) for k, v, default in (
            ("counts", list(counts) if counts else None, None),
            ("values", [list(v) for v in values] if values else None, None),
            ("total", total, DEFAULT_TOTAL),
            ("max_turns", max_turns, DEFAULT_MAX_TURNS),
        ) if v != default
    )
    from dataclasses import replace

    spec = replace(
        SPEC,
        params=params,
        chance=values is None,
        utility_range=(0.0, float(total)),
        max_length=max_turns,
    )
    return BargainingGame(spec, counts, values, total, max_turns)
