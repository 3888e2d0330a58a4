"""An evolution run's history: each playbook version beside its parent (a line
diff), the critic's feedback it came from, and the test that promoted or rejected
it (learn.evolve)."""

from __future__ import annotations

from dataclasses import dataclass

from sparring.records import Generation, PlaybookVersion, Promotion
from sparring.store import RunStore


@dataclass(frozen=True)
class VersionHistory:
    version: PlaybookVersion
    diff: tuple[tuple[str, str], ...]  # (kind: added, removed, context or hunk; line) from the parent
    generation: Generation | None  # the generation whose revision wrote it
    promotion: Promotion | None  # its test against its parent


@dataclass(frozen=True)
class PromotionTotals:
    tested: int
    promoted: int
    wins: int  # pairs of matches, over every test
    losses: int
    ties: int


@dataclass(frozen=True)
class Evolution:
    generations: tuple[Generation, ...]
    promotions: dict[int, Promotion]  # by candidate version
    versions: tuple[VersionHistory, ...]  # newest first
    totals: PromotionTotals


def read_evolution(store: RunStore) -> Evolution:
    generations = store.generations()
    promotions = {p.version: p for p in store.promotions()}
    playbooks = store.playbooks()
    by_version = {v.version: v for v in playbooks}
    wrote = {g.candidate: g for g in generations if g.candidate is not None}
    versions = tuple(
        VersionHistory(version=v, diff=playbook_diff(by_version.get(v.parent), v), generation=wrote.get(v.version),
                       promotion=promotions.get(v.version))
        for v in reversed(playbooks))
    tests = list(promotions.values())
    totals = PromotionTotals(tested=len(tests), promoted=sum(p.decision == "promote" for p in tests),
                             wins=sum(p.wins for p in tests), losses=sum(p.losses for p in tests),
                             ties=sum(p.ties for p in tests))
    return Evolution(tuple(generations), promotions, versions, totals)


def playbook_diff(parent: PlaybookVersion | None, version: PlaybookVersion) -> tuple[tuple[str, str], ...]:
    """The version's notes against its parent's, as a unified diff by line (the
    notes' first line is their heading, left out as `show --playbook` does)."""
    if parent is None:
        return ()
    kinds = {"+": "added", "-": "removed", "@": "hunk"}
    return tuple((kinds.get(text[:1], "context"), text) for text in version.diff_from(parent, context=1))
