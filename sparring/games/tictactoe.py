"""Tic-tac-toe, rules from OpenSpiel's `tic_tac_toe`; cells are named 1-9."""

from __future__ import annotations

import pyspiel

from sparring.games.openspiel import OpenSpielGame, OpenSpielState, mover, result_line, spec_from_openspiel

_OS_GAME = pyspiel.load_game("tic_tac_toe")  # immutable, so every match shares it
SPEC = spec_from_openspiel(
    _OS_GAME,
    game_id="tictactoe",
    version=1,
    answer_format="Answer: <cell>",
    name="Tic-tac-toe",  # OpenSpiel's long name is "Tic Tac Toe"
)

_CELL_NAMES = tuple(str(i + 1) for i in range(9))
_BOARD = (
    "Board (numbers are empty cells):\n"
    " {} | {} | {}\n---+---+---\n {} | {} | {}\n---+---+---\n {} | {} | {}"
)
_MARKS = ("X", "O")  # OpenSpiel: player 0 plays x, player 1 plays o
_RULES = (
    "Tic-tac-toe. Two players take turns marking an empty cell of a 3x3 board; "
    "the first to get three marks in a row, column or diagonal wins. A full board "
    "with no line is a draw. Win +1, loss -1, draw 0."
)


class TicTacToeState(OpenSpielState):
    def action_name(self, action: int) -> str:
        return str(action + 1)  # OpenSpiel cell 0..8, row by row

    def board(self) -> list[str]:
        """Cell texts, 0..8: a mark or the cell's number."""
        cells = list(_CELL_NAMES)
        for player, action, _ in self.history:
            cells[action] = _MARKS[player]
        return cells

    def view(self, player: int) -> str:
        # Rendered at every turn of every match: kept to plain string building.
        lines = [
            _RULES,
            f"You are Player {player + 1} and play {_MARKS[player]}.",
            _BOARD.format(*self.board()),
        ]
        if self.history:
            moves = ", ".join(
                f"{mover(p, player)} {_MARKS[p]} on {a + 1}" for p, a, _ in self.history
            )
            lines.append(f"Moves so far: {moves}.")
        if self.is_terminal():
            lines.append(result_line(self.returns()[player]))
        elif self.current_player() == player:
            cells = " ".join(_CELL_NAMES[a] for a in self.legal_actions())
            lines.append(f"Your turn. Empty cells you can mark: {cells}")
            lines.append(f'Answer with one line: "{SPEC.answer_format}"')
        else:
            lines.append("Waiting for the opponent to move.")
        return "\n".join(lines)


def make() -> OpenSpielGame:
    return OpenSpielGame(SPEC, _OS_GAME, TicTacToeState)
