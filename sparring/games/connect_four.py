"""Connect four, rules from OpenSpiel's `connect_four`; columns are named 1-7."""

from __future__ import annotations

import pyspiel

from sparring.games.openspiel import OpenSpielGame, OpenSpielState, mover, result_line, spec_from_openspiel

_OS_GAME = pyspiel.load_game("connect_four")  # immutable, so every match shares it
SPEC = spec_from_openspiel(
    _OS_GAME,
    game_id="connect_four",
    version=1,
    answer_format="Answer: <column>",
    name="Connect four",  # OpenSpiel's long name is "Connect Four"
)

_ROWS, _COLS = 6, 7
_MARKS = ("X", "O")  # OpenSpiel: player 0 drops x, player 1 drops o
_RULES = (
    "Connect four. Two players take turns dropping a disc into one of 7 columns of a "
    "6-row grid; the disc falls to the lowest empty row. The first to get four discs "
    "in a row (across, up or diagonal) wins. A full grid is a draw. Win +1, loss -1, draw 0."
)


class ConnectFourState(OpenSpielState):
    def action_name(self, action: int) -> str:
        return str(action + 1)  # OpenSpiel column 0..6

    def grid(self) -> list[list[str]]:
        """Rows bottom-up, each a list of 7 cells: X, O or '.'."""
        rows = [["."] * _COLS for _ in range(_ROWS)]
        heights = [0] * _COLS
        for player, col, _ in self.history:
            rows[heights[col]][col] = _MARKS[player]
            heights[col] += 1
        return rows

    def view(self, player: int) -> str:
        grid = self.grid()
        lines = [
            _RULES,
            f"You are Player {player + 1} and play {_MARKS[player]}.",
            "Grid (top row first, '.' is empty):",
        ]
        lines += [" ".join(row) for row in reversed(grid)]
        lines.append(" ".join(str(c + 1) for c in range(_COLS)) + "  <- column numbers")
        if self.history:
            moves = ", ".join(f"{mover(p, player)} {a + 1}" for p, a, _ in self.history)
            lines.append(f"Columns played so far: {moves}.")
        if self.is_terminal():
            lines.append(result_line(self.returns()[player]))
        elif self.current_player() == player:
            cols = " ".join(self.action_name(a) for a in self.legal_actions())
            lines.append(f"Your turn. Columns with room: {cols}")
            lines.append(f'Answer with one line: "{SPEC.answer_format}"')
        else:
            lines.append("Waiting for the opponent to move.")
        return "\n".join(lines)


def make() -> OpenSpielGame:
    return OpenSpielGame(SPEC, _OS_GAME, ConnectFourState)
