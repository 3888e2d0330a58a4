"""Liar's dice, rules from OpenSpiel's `liars_dice` (two players, six-sided dice,
sixes wild). A bid is named `NxF`: "at least N of all dice show face F"."""

from __future__ import annotations

import pyspiel

from sparring.games.core import GameSpec
from sparring.games.openspiel import OpenSpielGame, OpenSpielState, mover, spec_from_openspiel

SIDES = 6  # OpenSpiel's default; the highest face is wild


def _spec(os_game: pyspiel.Game) -> GameSpec:
    numdice = os_game.get_parameters()["numdice"]
    return spec_from_openspiel(
        os_game,
        game_id="liars_dice",
        version=1,
        answer_format="Answer: <bid like 2x3, or liar>",
        name="Liar's dice",  # OpenSpiel's long name is "Liars Dice"
        # the default instance carries no params, so its ref stays "liars_dice"
        params={} if numdice == 1 else {"numdice": numdice},
    )


SPEC = _spec(pyspiel.load_game("liars_dice"))


class LiarsDiceState(OpenSpielState):
    def action_name(self, action: int) -> str:
        if action == self.liar_action:
            return "liar"
        return f"{action // SIDES + 1}x{action % SIDES + 1}"  # OpenSpiel "q-f"

    @property
    def liar_action(self) -> int:
        return 2 * self.num_dice * SIDES

    @property
    def num_dice(self) -> int:
        return len(self.chance) // 2

    def dice(self, player: int) -> list[int]:
        """Faces `player` rolled, ascending; OpenSpiel rolls player 1's dice, then
        player 2's."""
        n = self.num_dice
        return sorted(c + 1 for c in self.chance[player * n : (player + 1) * n])

    def dice_line(self, player: int) -> str:
        return f"Player {player + 1} (you) rolled: {' '.join(map(str, self.dice(player)))}"

    def view(self, player: int) -> str:
        n = self.num_dice
        lines = [
            f"Liar's dice. Each player rolls {n} six-sided {'die' if n == 1 else 'dice'} "
            f"({2 * n} dice in all) and sees only their own. Players take turns bidding. "
            "A bid NxF (for example 2x3) claims: at least N of all the dice show face F. "
            "Sixes are wild: a 6 counts as every face. Each bid must be higher than the "
            "last: more dice, or the same number of dice with a higher face. Instead of "
            "bidding you may answer liar to challenge the last bid: if the bid is true "
            "the bidder wins, otherwise the challenger wins. Win +1, loss -1.",
            f"You are Player {player + 1}. {self.dice_line(player)}.",
        ]
        if self.history:
            bids = ", ".join(f"{mover(p, player)} {name}" for p, _, name in self.history)
            lines.append(f"Bids so far: {bids}.")
        else:
            lines.append("No bids yet.")
        if self.is_terminal():
            ret = self.returns()[player]
            lines.append(f"Game over: you {'won' if ret > 0 else 'lost'} ({ret:+g}).")
        elif self.current_player() == player:
            names = [self.action_name(a) for a in self.legal_actions()]
            lines.append(f"Your turn. Legal actions: {' '.join(names)}")
            lines.append(f'Answer with one line: "Answer: <action>", for example "Answer: {names[0]}"')
        else:
            lines.append("Waiting for the opponent.")
        return "\n".join(lines)

    def private_info(self, player: int) -> list[str]:
        return [self.dice_line(player)]


def make(numdice: int = 1) -> OpenSpielGame:
    if not isinstance(numdice, int) or not 1 <= numdice <= 5:
        from sparring.errors import SparringError

        raise SparringError(f"liars_dice: numdice must be an integer from 1 to 5, got {numdice!r}")
    os_game = pyspiel.load_game("liars_dice", {"numdice": numdice})
    return OpenSpielGame(_spec(os_game), os_game, LiarsDiceState)
