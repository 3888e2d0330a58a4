"""Leduc poker, rules from OpenSpiel's `leduc_poker` (two players, six cards)."""

from __future__ import annotations

import pyspiel

from sparring.games.openspiel import OpenSpielGame, OpenSpielState, mover, spec_from_openspiel

_OS_GAME = pyspiel.load_game("leduc_poker")  # immutable, so every match shares it
SPEC = spec_from_openspiel(
    _OS_GAME,
    game_id="leduc_poker",
    version=1,
    answer_format="Answer: <fold, call or raise>",
    name="Leduc poker",  # OpenSpiel's long name is "Leduc Poker"
)

# OpenSpiel card c has rank c // 2 and one of two suits, c % 2 (checked in tests).
_RANKS = ("Jack", "Queen", "King")
_SUITS = ("spades", "hearts")
_ACTIONS = ("fold", "call", "raise")  # OpenSpiel action 0, 1, 2
_RULES = (
    "Leduc poker. The deck has six cards: two Jacks, two Queens, two Kings. Each player "
    "puts 1 chip in the pot and gets one private card. There are two betting rounds; "
    "after the first, one public card is shown. In a round a raise costs 2 chips in "
    "round 1 and 4 in round 2, with at most two raises per round. "
    "fold: give up the pot. call: match the other's chips (a check when there is "
    "nothing to match). raise: match and add one raise. At the end, a private card "
    "that pairs the public card wins; otherwise the higher card wins; equal ranks split."
)


def card_name(card: int) -> str:
    return f"{_RANKS[card // 2]} of {_SUITS[card % 2]}"


class LeducPokerState(OpenSpielState):
    def action_name(self, action: int) -> str:
        return _ACTIONS[action]

    def card_line(self, player: int) -> str:
        return f"Your private card: {card_name(self.chance[player])}."

    def chips_in(self) -> list[int]:
        """Chips each player has put in the pot: ante 1, a call matches, a raise
        matches and adds 2 (round 1) or 4 (round 2), as in OpenSpiel."""
        chips = [1, 1]
        public_at = self.chance_turn[2] if len(self.chance) > 2 else len(self.history) + 1
        for turn, (player, action, _) in enumerate(self.history):
            if action == 1:
                chips[player] = max(chips)
            elif action == 2:
                chips[player] = max(chips) + (2 if turn < public_at else 4)
        return chips

    def view(self, player: int) -> str:
        lines = [_RULES, f"You are Player {player + 1}. {self.card_line(player)}"]
        public_at = self.chance_turn[2] if len(self.chance) > 2 else None
        rounds = [self.history[:public_at] if public_at is not None else self.history]
        if public_at is not None:
            rounds.append(self.history[public_at:])
        for i, moves in enumerate(rounds):
            if i == 1:
                lines.append(f"Public card: {card_name(self.chance[2])}.")
            said = ", ".join(f"{mover(p, player)} {name}" for p, _, name in moves)
            lines.append(f"Round {i + 1} betting: {said or 'nothing yet'}.")
        chips = self.chips_in()
        mine, theirs = chips[player], chips[1 - player]
        lines.append(f"Chips in the pot: yours {mine}, opponent's {theirs}.")
        if self.is_terminal():
            ret = self.returns()[player]
            result = f"won {_chips(ret)}" if ret > 0 else f"lost {_chips(-ret)}" if ret < 0 else "split the pot"
            lines.append(f"Game over: you {result} ({ret:+g}).")
        elif self.current_player() == player:
            names = " ".join(self.action_name(a) for a in self.legal_actions())
            lines.append(f"Your turn. Legal actions: {names}")
            lines.append(f'Answer with one line: "Answer: <action>", for example "Answer: {names.split()[-1]}"')
        else:
            lines.append("Waiting for the opponent to act.")
        return "\n".join(lines)

    def private_info(self, player: int) -> list[str]:
        return [self.card_line(player)]


def _chips(n: float) -> str:
    return f"{n:g} chip" + ("" if n == 1 else "s")


def make() -> OpenSpielGame:
    return OpenSpielGame(SPEC, _OS_GAME, LeducPokerState)
