"""A playbook: the strategy notes an agent receives with the rules, as a bounded
list of typed rules, each citing the matches that support it (AutoManual, Chen et
al. 2024, arXiv 2405.16247: rules with their evidence; SELF and ICL-AIF revise them
from feedback in words).

A reviser (a language model) writes rules one per line:

    RULE: when <situation> | do <action> | because <reason> | matches <ids>

`parse_playbook` reads whatever it wrote and keeps only what holds: rules in that
format, each field cut to `MAX_FIELD_CHARS` and made inert (control characters
drawn, never obeyed), citations only of matches that exist, at most `max_rules`
rules, and as many of those as fit `max_tokens`. Text with no rule in it is a
`PlaybookError`, which the evolution records as an event while the parent stays.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass

from sparring.display import visible
from sparring.errors import SparringError

MAX_FIELD_CHARS = 240  # one clause of a rule; a longer one is cut, not the whole rule dropped
RULE_FORMAT = "RULE: when <situation> | do <action> | because <reason> | matches <match ids>"
_RULE = re.compile(
    r"^[\W\d]*?rule\s*\d*\s*[:.)-]\s*when\b\s*(?P<when>.+?)\s*\|\s*do\b\s*(?P<do>.+?)\s*\|\s*because\b\s*(?P<because>.+?)"
    r"\s*(?:\|\s*matche?s?\b\s*:?\s*(?P<matches>[^|]*?))?\s*$",
    re.IGNORECASE,
)


class PlaybookError(SparringError):
    """A revision that holds no rule in the playbook's format."""


@dataclass(frozen=True)
class Rule:
    when: str
    do: str
    because: str
    evidence: tuple[int, ...] = ()  # ids of the stored matches that support it

    def render(self) -> str:
        cited = f" (matches {', '.join(map(str, self.evidence))})" if self.evidence else ""
        return f"When {self.when}, {self.do}, because {self.because}.{cited}"


@dataclass(frozen=True)
class Playbook:
    rules: tuple[Rule, ...] = ()

    def render(self) -> str:
        """The notes as the agent reads them, after the rules of the game."""
        if not self.rules:
            return ""
        lines = [f"{i}. {rule.render()}" for i, rule in enumerate(self.rules, 1)]
        return "Your playbook (strategy notes from earlier games):\n" + "\n".join(lines)

    def written(self) -> str:
        """The rules in the reviser's own format, to revise them again."""
        return "\n".join(
            f"RULE: when {r.when} | do {r.do} | because {r.because}"
            + (f" | matches {', '.join(map(str, r.evidence))}" if r.evidence else "")
            for r in self.rules
        ) or "(empty: no rules yet)"

    def to_json(self) -> str:
        return json.dumps([{"when": r.when, "do": r.do, "because": r.because, "evidence": list(r.evidence)}
                           for r in self.rules])

    @classmethod
    def from_json(cls, text: str) -> Playbook:
        return cls(tuple(Rule(r["when"], r["do"], r["because"], tuple(r["evidence"])) for r in json.loads(text)))


def parse_playbook(text: str, max_rules: int, max_tokens: int, count_tokens: Callable[[str], int],
                   known_matches: Collection[int]) -> Playbook:
    """The playbook a reviser's `text` holds, within the limits (see the module
    docstring); raises PlaybookError when no line is a rule."""
    rules: list[Rule] = []
    for line in text.splitlines():
        found = _RULE.match(line.strip())
        if found is None:
            continue
        cited = (int(n) for n in re.findall(r"\d+", found["matches"] or ""))
        evidence = tuple(dict.fromkeys(n for n in cited if n in known_matches))  # real matches, once each
        clauses = [_clause(found[part]) for part in ("when", "do", "because")]
        if all(clauses):  # a rule says all three
            rules.append(Rule(*clauses, evidence))
    if not rules:
        raise PlaybookError(f"the revision holds no rule in the format '{RULE_FORMAT}'")
    kept: list[Rule] = []
    for rule in rules[:max_rules]:
        if count_tokens(Playbook(tuple(kept + [rule])).render()) > max_tokens:
            break  # the first rules are kept whole; the rest does not fit
        kept.append(rule)
    if not kept:
        raise PlaybookError(f"the revision's first rule alone is over the playbook's {max_tokens} tokens")
    return Playbook(tuple(kept))


def _clause(text: str) -> str:
    text = " ".join(visible(text).split()).rstrip(".")
    return text if len(text) <= MAX_FIELD_CHARS else text[: MAX_FIELD_CHARS - 1].rstrip() + "…"
