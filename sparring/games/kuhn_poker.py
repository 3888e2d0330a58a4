"""Kuhn poker, rules from OpenSpiel's `kuhn_poker` (two players, cards J, Q, K)."""

from __future__ import annotations

import pyspiel

from sparring.games.openspiel import OpenSpielGame, OpenSpielState, mover, spec_from_openspiel

_OS_GAME = pyspiel.load_game("kuhn_poker")  # immutable, so every match shares it
SPEC = spec_from_openspiel(
    _OS_GAME,
    game_id="kuhn_poker",
    version=1,
    answer_format="Answer: <pass or bet>",
    name="Kuhn poker",  # OpenSpiel's long name is "Kuhn Poker"
)

CARDS = ("Jack", "Queen", "King")  # OpenSpiel card 0, 1, 2
_ACTIONS = ("pass", "bet")  # OpenSpiel action 0, 1
_RULES = (
    "Kuhn poker. The deck has three cards: Jack < Queen < King. Each player puts 1 chip "
    "in the pot and gets one card, seen only by its owner. Player 1 acts first. "
    "pass: put nothing in (after a bet, passing folds and gives up the pot). "
    "bet: put 1 more chip in (after a bet, this calls it). "
    "If a bet is folded, the bettor takes the pot. Otherwise the higher card takes it. "
    "You win or lose 1 or 2 chips."
)


class KuhnPokerState(OpenSpielState):
    def action_name(self, action: int) -> str:
        return _ACTIONS[action]

    def card_line(self, player: int) -> str:
        return f"Your card: {CARDS[self.chance[player]]}."

    def view(self, player: int) -> str:
        lines = [_RULES, f"You are Player {player + 1}. {self.card_line(player)}"]
        if self.history:
            acts = ", ".join(f"{mover(p, player)} {name}" for p, _, name in self.history)
            lines.append(f"Betting so far: {acts}.")
        else:
            lines.append("No one has acted yet.")
        bet_open = any(a == 1 for _, a, _ in self.history)
        if self.is_terminal():
            ret = self.returns()[player]
            folded = self.history[-1][1] == 0 and bet_open
            how = "the other player folded" if folded and ret > 0 else "you folded" if folded else "showdown"
            lines.append(f"Game over ({how}): you {'won' if ret > 0 else 'lost'} {abs(ret):g} chip{'' if abs(ret) == 1 else 's'} ({ret:+g}).")
        elif self.current_player() == player:
            if bet_open:
                lines.append("Your turn. There is a bet to answer.")
                lines.append("- pass (fold: lose the chips you put in)\n- bet (call: put in 1 chip and go to showdown)")
            else:
                lines.append("Your turn. No bet yet.")
                lines.append("- pass (check: put in nothing)\n- bet (put in 1 more chip)")
            lines.append('Answer with one line: "Answer: pass" or "Answer: bet"')
        else:
            lines.append("Waiting for the opponent to act.")
        return "\n".join(lines)

    def private_info(self, player: int) -> list[str]:
        return [self.card_line(player)]


def make() -> OpenSpielGame:
    return OpenSpielGame(SPEC, _OS_GAME, KuhnPokerState)
