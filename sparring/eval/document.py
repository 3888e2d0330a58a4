"""One report as two documents built side by side, a self-contained HTML page and a
markdown summary carrying the same tables and figures. Every string given to them
is data and is escaped here: `html.escape` in the page, fenced code in the markdown,
and its control characters (terminal escape sequences) drawn, not kept (`visible`).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path
from typing import Any

from sparring.display import visible
from sparring.records import MatchRecord, Turn

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 70em;
       padding: 0 1.5em; color: #1d2125; line-height: 1.45; }
h1 { font-size: 1.6em; border-bottom: 2px solid #d0d7de; padding-bottom: .3em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #d0d7de; padding-bottom: .2em; }
h3 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .92em; }
th, td { border: 1px solid #d0d7de; padding: .3em .7em; text-align: left; }
th { background: #f3f5f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; display: block; margin: .8em 0; }
pre { background: #f6f8fa; padding: .6em .8em; overflow-x: auto; white-space: pre-wrap;
      word-break: break-word; margin: .3em 0; font-size: .88em; }
.note { background: #fff8c5; border-left: 4px solid #d4a72c; padding: .4em .8em; margin: .6em 0; }
.match h3 { margin-top: .2em; }
.match { border: 1px solid #d0d7de; border-radius: 6px; padding: .6em 1em; margin: 1em 0; }
.turn { border-top: 1px solid #eaeef2; padding: .4em 0; }
.who { font-weight: 600; }
.ok { color: #1a7f37; } .bad { color: #cf222e; } .forced { color: #9a6700; }
.label { color: #57606a; font-size: .85em; }
summary { cursor: pointer; color: #57606a; }
"""


class Document:
    """The HTML page and the markdown summary, built side by side so they carry the
    same tables. Every string given to it is data and is escaped here."""

    def __init__(self, folder: Path, title: str):
        self.folder = folder
        self.title = title
        self.html: list[str] = [f"<h1>{_h(title)}</h1>"]
        self.md: list[str] = [f"# {_md(title)}", ""]

    def heading(self, text: str, level: int = 2) -> None:
        self.html.append(f"<h{level}>{_h(text)}</h{level}>")
        self.md += ["#" * level + " " + _md(text), ""]

    def text(self, text: str) -> None:
        self.html.append(f"<p>{_h(text)}</p>")
        self.md += [_md(text), ""]

    def note(self, text: str) -> None:
        self.html.append(f'<p class="note">{_h(text)}</p>')
        self.md += [f"> **Note:** {_md(text)}", ""]

    def bullets(self, items: list[str]) -> None:
        self.html.append("<ul>" + "".join(f"<li>{_h(i)}</li>" for i in items) + "</ul>")
        self.md += [f"- {_md(i)}" for i in items] + [""]

    def details(self, summary: str, text: str) -> None:
        self.html.append(f"<details><summary>{_h(summary)}</summary><pre>{_h(text)}</pre></details>")
        self.md += [f"<details><summary>{_h(summary)}</summary>", "", _fence(text), "", "</details>", ""]

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.html.append(_html_table(header, rows))
        self.md += _md_table(header, rows) + [""]

    def details_table(self, summary: str, header: list[str], rows: list[list[str]]) -> None:
        self.html.append(f"<details><summary>{_h(summary)}</summary>{_html_table(header, rows)}</details>")
        self.md += [f"<details><summary>{_h(summary)}</summary>", "", *_md_table(header, rows), "", "</details>", ""]

    def figure(self, fig, name: str, alt: str) -> None:
        plt = pyplot()
        buffer = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        self.png(buffer.getvalue(), name, alt)

    def png(self, data: bytes, name: str, alt: str) -> None:
        (self.folder / name).write_bytes(data)
        uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
        self.html.append(f'<img src="{uri}" alt="{_h(alt)}">')
        self.md += [f"![{_md(alt)}]({name})", ""]

    def match(self, match: MatchRecord, turns: list[Turn]) -> None:
        seats = ", ".join(f"seat {i + 1}: {a}" for i, a in enumerate(match.seats))
        returns = ", ".join(f"{r:+g}" for r in match.returns)
        ending = f"returns {returns}"
        if match.forfeit_by is not None:
            ending += f"; seat {match.forfeit_by + 1} forfeited after invalid answers"
        title = f"Match {match.index} of {match.game} ({seats})"
        parts = [f'<div class="match"><h3>{_h(title)}</h3>']
        md = [f"### {_md(title)}", ""]
        for t in turns:
            who = f"decision {t.decision + 1}" + (f", attempt {t.attempt + 1}" if t.attempt else "") \
                + f": seat {t.seat + 1} ({t.agent})"
            parts.append(f'<div class="turn"><div class="who">{_h(who)}</div>')
            if t.view:
                parts.append(f"<details><summary>view</summary><pre>{_h(t.view)}</pre></details>")
            md.append(f"**{_md(who)}**")
            md.append("")
            for label, text in (("model completion", t.choice.completion), ("message", t.choice.message)):
                if text:
                    parts.append(f'<div class="label">{label}</div><pre>{_h(text)}</pre>')
                    md += [f"{label}:", "", _fence(text), ""]
            if t.valid and t.forced:
                outcome, css = f"random move after invalid answers: {t.action_name}", "forced"
            elif t.valid:
                outcome, css = f"plays {t.action_name}", "ok"
            else:
                outcome, css = f"invalid: {t.reason}", "bad"
            parts.append(f'<div class="{css}">&rarr; {_h(outcome)}</div></div>')
            md += [f"→ {_md(outcome)}", ""]
        parts.append(f"<p><strong>{_h(ending)}</strong></p></div>")
        md += [f"**{_md(ending)}**", ""]
        self.html.append("".join(parts))
        self.md += md

    def save(self) -> tuple[Path, Path]:
        page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>{_h(self.title)}</title><style>{_CSS}</style></head>\n<body>\n"
                + "\n".join(self.html) + "\n</body></html>\n")
        html_path, md_path = self.folder / "report.html", self.folder / "report.md"
        html_path.write_text(page, encoding="utf-8")
        md_path.write_text("\n".join(self.md), encoding="utf-8")
        return html_path, md_path


def _h(text: Any) -> str:
    return html.escape(visible(str(text)), quote=True)


def _md(text: Any) -> str:
    """Data as markdown text: HTML escaped (markdown renderers pass raw HTML through),
    table pipes escaped, one line."""
    return html.escape(visible(str(text)), quote=False).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _fence(text: str) -> str:
    """A fenced code block longer than any run of backticks in `text`, so model text
    can never close it and turn into markdown or HTML; its control characters are
    drawn, so printing the file obeys none of them."""
    text = visible(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


_NUMERIC = re.compile(r"[-+\[]?\d")  # cells right-aligned in the page: numbers, intervals


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_h(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{_h(c)}</td>' if _NUMERIC.match(c) else f"<td>{_h(c)}</td>" for c in row
    ) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md(c) for c in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]


def pm(mean: float, half: float, digits: int) -> str:
    return f"{mean:+.{digits}f} ± {half:.{digits}f}"


def num(value: Any, fmt: str) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt
