import pytest

from sparring.agents.llm import extract_action, extract_message, rejection_kind

CELLS = {str(i): i - 1 for i in range(1, 10)}


def test_plain_answer():
    assert extract_action("Answer: 5", CELLS) == (4, None)


def test_case_and_spacing():
    legal = {"bet": 1, "pass": 0}
    assert extract_action("ANSWER :   BeT", legal)[0] == 1
    assert extract_action("answer:pass", legal)[0] == 0


def test_last_answer_wins():
    assert extract_action("Answer: 3\nNo wait. Answer: 7", CELLS)[0] == 6
    assert extract_action("I could bet or pass. I pass.", {"bet": 1, "pass": 0})[0] == 0


def test_answer_line_is_preferred_over_reasoning():
    text = "Cell 9 looks good but answer: 1 blocks the threat, unlike 9"
    # after the last 'answer:' marker the last mention is 9
    assert extract_action(text, CELLS)[0] == 8
    assert extract_action("Thinking about 2 and 3.\nAnswer: 4", CELLS)[0] == 3


def test_whole_words_only():
    assert extract_action("Answer: 15", CELLS)[0] is None
    assert extract_action("Answer: betting", {"bet": 1})[0] is None


def test_multiword_names_tolerate_spacing():
    legal = {"propose 1 2 0": 7, "accept": 1}
    assert extract_action("Answer: propose  1 2\t0", legal)[0] == 7


def test_no_legal_move_gives_reason():
    action, reason = extract_action("I like turtles", {"bet": 1, "pass": 0})
    assert action is None and "no legal move" in reason and "bet, pass" in reason
    assert extract_action("   ", CELLS) == (None, "empty answer")


def test_message_line():
    assert extract_message("Message: deal?\nAnswer: accept") == "deal?"
    assert extract_message("Answer: accept") is None


@pytest.mark.parametrize("completion, action, kind", [
    ("", None, "unparsable"),
    ("I like the centre best.", None, "unparsable"),  # no answer line, no legal move named
    ("Answer:", None, "unparsable"),  # the line, but nothing on it
    ("Answer: 5", None, "illegal"),  # a move on the answer line that is not legal here (a taken cell)
    ("Thinking... answer: raise", None, "illegal"),  # a move this game never offers
    ("anything", 4, "illegal"),  # an action the rules refused
])
def test_a_rejected_answer_is_illegal_or_unparsable(completion, action, kind):
    assert rejection_kind(completion, action) == kind
    # and the parser rejects every one of these texts in a state where 5 and raise are not legal
    if action is None:
        assert extract_action(completion, {"1": 0, "2": 1})[0] is None
