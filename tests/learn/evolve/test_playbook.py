"""The playbook keeps its format and its limits whatever a reviser writes: rules in
the stated form, at most max_rules, within max_tokens, fields cut and inert,
citations only of real matches; text with no rule is an error the run records."""

from __future__ import annotations

import random
import string

import pytest

from sparring.learn.evolve.playbook import (
    MAX_FIELD_CHARS,
    Playbook,
    PlaybookError,
    Rule,
    parse_playbook,
)

WORDS = lambda text: len(text.split())  # a token counter with an obvious meaning


def parse(text, max_rules=8, max_tokens=400, known=range(100)):
    return parse_playbook(text, max_rules, max_tokens, WORDS, set(known))


def test_rules_are_read_in_the_forms_models_write_them():
    text = """Here is the revised playbook:
RULE: when you hold the King | do bet | because no card beats it | matches 3, 7
1. Rule: When the opponent bets and you hold the Jack | Do pass | Because calling loses 2 | matches: 12
- RULE 3: when no one has bet | do pass | because checking keeps the pot small.
rule: when | do | because
Some closing words."""
    playbook = parse(text)
    assert playbook.rules == (
        Rule("you hold the King", "bet", "no card beats it", (3, 7)),
        Rule("the opponent bets and you hold the Jack", "pass", "calling loses 2", (12,)),
        Rule("no one has bet", "pass", "checking keeps the pot small", ()),
    )
    assert playbook.render().splitlines()[1] == "1. When you hold the King, bet, because no card beats it. (matches 3, 7)"


def test_only_real_matches_are_cited_and_each_once():
    playbook = parse("RULE: when a | do b | because c | matches 5, 999, 5, 6", known={5, 6})
    assert playbook.rules[0].evidence == (5, 6)


def test_no_rule_is_an_error_and_so_is_a_first_rule_over_the_limit():
    with pytest.raises(PlaybookError, match="holds no rule"):
        parse("I think the player should bet more often.")
    with pytest.raises(PlaybookError, match="over the playbook's 10 tokens"):
        parse("RULE: when " + "very " * 20 + "late | do bet | because x", max_tokens=10)


def test_the_written_form_reads_back_as_the_same_playbook():
    playbook = parse("RULE: when a b | do c | because d | matches 1\nRULE: when e | do f | because g")
    assert parse(playbook.written()) == playbook
    assert Playbook.from_json(playbook.to_json()) == playbook


def _noise(rng: random.Random) -> str:
    alphabet = string.printable + "\x1b\x07\u009b|:é漢"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))


def _fuzzed_line(rng: random.Random) -> str:
    part = lambda: rng.choice(["", "x", _noise(rng), "word " * rng.randint(1, 200)])
    cited = ", ".join(str(rng.randint(-5, 300)) for _ in range(rng.randint(0, 6)))
    return rng.choice([
        f"RULE: when {part()} | do {part()} | because {part()} | matches {cited}",
        f"{rng.randint(1, 30)}. rule: WHEN {part()} | DO {part()} | BECAUSE {part()}",
        _noise(rng),
        f"RULE: when {part()} do {part()} because {part()}",  # no bars: not the format
    ])


def test_fuzzed_revisions_keep_format_and_limits_or_are_refused():
    rng = random.Random(0)
    kept = refused = 0
    for _ in range(500):
        text = "\n".join(_fuzzed_line(rng) for _ in range(rng.randint(0, 25)))
        max_rules, max_tokens = rng.randint(1, 10), rng.randint(20, 400)
        try:
            playbook = parse(text, max_rules, max_tokens, known=range(0, 200, 3))
        except PlaybookError:
            refused += 1
            continue
        kept += 1
        assert 1 <= len(playbook.rules) <= max_rules
        assert WORDS(playbook.render()) <= max_tokens
        for rule in playbook.rules:
            for clause in (rule.when, rule.do, rule.because):
                assert clause and len(clause) <= MAX_FIELD_CHARS
                assert not any(c in clause for c in "\x1b\x07\u009b\n")  # drawn, never obeyed
            assert all(n % 3 == 0 and 0 <= n < 200 for n in rule.evidence)
        assert parse(playbook.written(), max_rules, max_tokens, known=range(0, 200, 3)) == playbook
    assert kept > 50 and refused > 50  # both paths were exercised
