"""The LIMR rule reward's format rules, answer extraction and equivalence (in-process, no pool)."""

from __future__ import annotations

import random
import re

import pytest
from limr_trainer import reward as R

GOOD = "We add the numbers: $2+3=5$. So the answer is $\\boxed{5}$."


def test_well_formatted_correct_and_wrong():
    assert R.check(GOOD, "5") == R.RewardResult(1.0, True, R.CORRECT, "5")
    wrong = R.check(GOOD, "6")
    assert (wrong.reward, wrong.correct, wrong.reason, wrong.answer) == (-0.5, False, R.WRONG, "5")
    assert wrong.format_error is None


def test_truncated():
    assert R.check(GOOD, "5", truncated=True).reason == R.TRUNCATED
    assert R.check(GOOD, "5", truncated=False).reason == R.CORRECT


@pytest.mark.parametrize(
    "text,expected",
    [
        ("the answer is 5", None),
        ("the answer is \\boxed{5", None),  # unclosed: no complete boxed
        ("\\boxed 5", None),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed{1} then \\boxed{ {a}^{ {b} } }", " {a}^{ {b} } "),
        ("\\boxed{\\{1,2\\}}", "\\{1,2\\}"),  # escaped braces do not nest
        ("\\boxed {7}", "7"),
        ("\\boxed{3} and a broken \\boxed{4", "3"),  # the last *complete* one
    ],
)
def test_last_boxed(text, expected):
    assert R.last_boxed(text) == expected


def test_no_boxed_rule():
    assert R.check("The answer is 5.", "5").reason == R.NO_BOXED
    assert R.check("The answer is \\boxed{5", "5").reason == R.NO_BOXED
    assert R.check("The answer is \\boxed{5}", "5").reason == R.CORRECT


def test_too_many_boxed_rule():
    four = " ".join(f"\\boxed{{{i}}}" for i in range(1, 5))
    five = " ".join(f"\\boxed{{{i}}}" for i in range(1, 6))
    assert R.check(four, "4").reason == R.CORRECT
    assert R.check(five, "5").reason == R.TOO_MANY_BOXED


def test_bad_characters_rule():
    body = "Adding both numbers gives the total of our sum, so we are done here:  "  # 70 characters
    assert len(body) == 70
    mixed = "".join(chr(0x4E00 + 7 * i) for i in range(29))  # distinct CJK characters
    assert R.format_violation(body + mixed + "\\boxed{1}") is None  # 29/108 < 30%
    assert R.check(body + mixed + mixed[::-1] + "\\boxed{1}", "1").reason == R.BAD_CHARACTERS  # 58/137
    # math operators U+2200-U+22FF and all the listed ASCII punctuation are allowed
    assert R.bad_character_share("∀x∈ℝ".replace("ℝ", "R") + "!?\"'(){}[]_-+=<>/@#$%^&*\\|:;~`") == 0.0
    assert R.bad_character_share("é") == 1.0
    assert R.bad_character_share("") == 0.0


def test_repetition_rule():
    assert R.check("Let me check. " + "abcde" * 5 + " \\boxed{1}", "1").reason == R.REPETITION
    assert R.check("Let me check. " + "abcde" * 4 + " \\boxed{1}", "1").reason == R.CORRECT
    assert R.check("Let me check. " + "abcd" * 9 + " \\boxed{1}", "1").reason == R.CORRECT  # unit of 4
    long_unit = "The sum of the roots is 7. "
    assert R.check(long_unit * 5 + "\\boxed{7}", "7").reason == R.REPETITION
    assert R.check(long_unit * 4 + "\\boxed{7}", "7").reason == R.CORRECT


def _regex_reference(text: str) -> bool:
    return re.search(r"(.{5,}?)\1{4,}", text, re.DOTALL) is not None


def test_repetition_matches_a_regex_reference_on_random_text():
    rng = random.Random(7)
    hits = 0
    for _ in range(400):
        alphabet = rng.choice(["ab", "abc", "ab c", "abcdefgh"])
        unit = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        parts = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))),
            unit * rng.randint(1, 6),
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))),
        ]
        text = "".join(parts)
        expected = _regex_reference(text)
        hits += expected
        assert R.has_repeated_unit(text) == expected, text
    assert 40 < hits < 360  # both outcomes well represented


def test_rule_order_names_the_first_rule():
    text = "中" * 50 + " ".join(["\\boxed{1}"] * 5)
    assert R.check(text, "1", truncated=True).reason == R.TRUNCATED
    assert R.check(text, "1").reason == R.TOO_MANY_BOXED
    assert set(R.FORMAT_RULES) >= {R.TRUNCATED, R.NO_BOXED, R.TOO_MANY_BOXED, R.BAD_CHARACTERS, R.REPETITION}


@pytest.mark.parametrize(
    "gold,answer",
    [
        ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{3}}{2}"),
        ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}2"),
        ("\\frac12", "0.5"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
        ("\\text{Evelyn}", "\\text{Evelyn}"),
        ("p - q", "p-q"),
        ("(3,4]", "(3,4]"),
    ],
)
def test_equivalent_answers_score_plus_one_through_math_verify(gold, answer):
    assert R.equivalent(gold, answer, shortcut=False)
    assert R.check(f"so $\\boxed{{{answer}}}$", gold).reward == 1.0


@pytest.mark.parametrize(
    "gold,answer",
    [("5", "6"), ("\\frac{\\sqrt{3}}{2}", "\\frac{\\sqrt{2}}{2}"), ("(3,4]", "[3,4]"), ("1", "")],
)
def test_different_answers_are_wrong(gold, answer):
    assert not R.equivalent(gold, answer)


def test_reward_values_map_the_three_levels():
    levels = R.RewardValues(correct=2.0, wrong=0.0, format_error=-3.0)
    assert levels.apply(R.check(GOOD, "5")).reward == 2.0
    assert levels.apply(R.check(GOOD, "6")).reward == 0.0
    bad = levels.apply(R.check("no box", "5"))
    assert (bad.reward, bad.reason, bad.format_error) == (-3.0, R.NO_BOXED, R.NO_BOXED)
    assert R.DEFAULT_VALUES.apply(R.check(GOOD, "6")).reward == -0.5
