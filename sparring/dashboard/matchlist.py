"""The run page's list of matches: which to show (a filter from the page's query),
a page at a time."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

from sparring.arena.results import outcome
from sparring.records import MatchRecord

MATCHES_PER_PAGE = 100
SHOWS = {"": "all matches", "invalid": "with rejected answers", "forfeit": "ended by a forfeit",
         "win": "won by the agent", "loss": "lost by the agent", "draw": "drawn by the agent"}


@dataclass(frozen=True)
class MatchFilter:
    agent: str = ""  # matches where this agent held a seat ("" any)
    show: str = ""  # one of SHOWS; win, loss and draw are the agent's (any seat's without one)

    @classmethod
    def of(cls, query) -> MatchFilter:
        show = query.get("show", "")
        return cls(query.get("agent", ""), show if show in SHOWS else "")

    @property
    def active(self) -> bool:
        return bool(self.agent or self.show)

    def keeps(self, m: MatchRecord) -> bool:
        seats = [s for s, name in enumerate(m.seats) if name == self.agent] if self.agent else range(len(m.seats))
        if self.agent and not seats:
            return False
        if self.show == "invalid":
            return any(m.invalid[s] for s in seats)
        if self.show == "forfeit":
            return m.forfeit_by is not None and (not self.agent or m.forfeit_by in seats)
        if self.show in ("win", "loss", "draw"):
            return any(outcome(m.returns, s) == self.show for s in seats)
        return True

    def query(self, page: int) -> str:
        """The query string of page `page` under this filter."""
        fields = {k: v for k, v in (("agent", self.agent), ("show", self.show), ("page", page)) if v and v != 1}
        return "?" + urlencode(fields) if fields else "?"


@dataclass(frozen=True)
class MatchPage:
    matches: list[MatchRecord]
    page: int
    pages: int
    total: int  # matches the filter keeps
    stored: int  # every finished match of the run
    filter: MatchFilter


def match_page(store, chosen: MatchFilter, page: int) -> MatchPage:
    """Page `page` of the matches `chosen` keeps (clamped to the pages there are):
    without a filter read by index, a page's worth; with one, every match read and
    filtered."""
    indices = sorted(store.finished_indices())
    kept = [m for m in store.matches() if chosen.keeps(m)] if chosen.active else indices
    pages = max(1, math.ceil(len(kept) / MATCHES_PER_PAGE))
    page = min(max(1, page), pages)
    shown = kept[(page - 1) * MATCHES_PER_PAGE: page * MATCHES_PER_PAGE]
    records = shown if chosen.active else [store.match(i) for i in shown]
    return MatchPage(records, page, pages, len(kept), len(indices), chosen)

