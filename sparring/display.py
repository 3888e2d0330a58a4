"""Text that others wrote (a model's completion, a server's error, an opponent's
message), made safe to show: every control character is drawn, never obeyed.

A terminal obeys escape sequences: ANSI colours (`ESC [ 31 m`), cursor moves that
overwrite earlier lines, OSC hyperlinks and window titles (`ESC ] 8 ; ; URL BEL`).
Model text printed as it is could recolour a replay, hide lines, or turn words into
links; in a page or a markdown file the same bytes are invisible junk. `visible`
replaces each control character by its Unicode picture (ESC -> "␛", BEL -> "␇"),
so a reader sees that the model wrote one, and nothing acts on it.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and the C1 controls (U+0080-U+009F: a
# terminal reads U+009B as CSI, the same as ESC [).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def _picture(match: re.Match) -> str:
    code = ord(match[0])
    if code < 0x20:
        return chr(0x2400 + code)  # the Control Pictures block: U+241B is ␛
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\x{code:02x}"


def visible(text: str) -> str:
    """`text` with every control character but tab and newline shown as a visible
    symbol; a Windows line end (CR LF) stays a line end."""
    return _CONTROL.sub(_picture, text.replace("\r\n", "\n"))
