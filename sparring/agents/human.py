"""A person at the terminal: sees their view, types an action."""

from __future__ import annotations

import sys
from typing import TextIO

from sparring.agents.base import Choice, Decision
from sparring.display import visible
from sparring.errors import SparringError


class HumanAgent:
    """Prints `state.view(player)` and a numbered list of the legal actions, then
    reads an answer: the action's name (case-insensitive, an "Answer:" prefix is
    allowed) or its number in the list. A bad answer is explained and asked again;
    closed input raises SparringError, so the CLI stops cleanly.

    `input_stream` / `output_stream` default to stdin / stdout; tests pass StringIO.
    """

    def __init__(
        self,
        input_stream: TextIO | None = None,
        output_stream: TextIO | None = None,
        name: str = "human",
    ):
        self.input = input_stream
        self.output = output_stream
        self.name = name

    def act(self, decisions: list[Decision]) -> list[Choice]:
        choices = []
        for i, decision in enumerate(decisions, 1):
            if len(decisions) > 1:
                self._say(f"\n=== Game {i} of {len(decisions)} waiting for you ===")
            choices.append(Choice(action=self._ask(decision)))
        return choices

    def _ask(self, decision: Decision) -> int:
        state = decision.state
        legal = state.legal_actions()
        names = [state.action_name(a) for a in legal]
        # Where actions are named by numbers (tic-tac-toe cells), list numbers would
        # clash with them: then only names are accepted.
        numbered = not any(name.strip().isdigit() for name in names)
        self._say("")
        self._say(state.view(decision.player))
        if numbered:
            self._say("Legal actions: " + "  ".join(f"[{n}] {name}" for n, name in enumerate(names, 1)))
        else:
            self._say("Legal actions: " + " ".join(names))
        hint = "name or number" if numbered else "name"
        while True:
            self._say(f"Player {decision.player + 1}, your move ({hint}): ", end="")
            answer = self._read_line()
            action = parse_answer(answer, legal, names, numbered)
            if action is not None:
                return action
            also = f", or 1-{len(names)}" if numbered else ""
            self._say(f"'{answer.strip()}' is not a legal action here. "
                      f"Type one of: {', '.join(names)}{also}.")

    def _read_line(self) -> str:
        stream = self.input if self.input is not None else sys.stdin
        line = stream.readline()
        if line == "":  # readline returns "" only at end of input
            raise SparringError("input closed before a move was chosen: the game stops here")
        return line

    def _say(self, text: str, end: str = "\n") -> None:
        """Write to the person; views carry other players' words (a model's message in
        bargaining), so control characters are drawn, never sent to the terminal."""
        stream = self.output if self.output is not None else sys.stdout
        stream.write(visible(text) + end)
        stream.flush()

    def close(self) -> None:
        pass


def parse_answer(answer: str, legal: list[int], names: list[str], numbered: bool = True) -> int | None:
    """The action a typed answer names (case-insensitive), or None. With `numbered`,
    a number picks from the printed list (1-based)."""
    text = answer.strip()
    if text.lower().startswith("answer:"):
        text = text[len("answer:") :].strip()
    lowered = text.lower()
    for action, name in zip(legal, names):
        if name.strip().lower() == lowered:
            return action
    if numbered and text.isdigit() and 1 <= int(text) <= len(legal):
        return legal[int(text) - 1]
    return None
