"""Properties of the reward checker over arbitrary text: the boxed scan equals its definition, the
format rules never raise, the timed pool always answers with one of the known verdicts within its
bound, and text that breaks no rule cannot change a verdict (issue 14, property-based tests)."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from limr_trainer import reward as R
from limr_trainer.reward.pool import CheckerPool
from limr_trainer.reward.results import FORMAT_RULES

# Pieces that make the boxed scan's hard cases likely: openings, escaped and bare braces, blanks.
PIECES = ["\\boxed", "\\boxed{", "{", "}", "\\{", "\\}", "\\", " ", "\t", "a", "1", "x^{2}", "\n"]
boxy_text = st.lists(st.sampled_from(PIECES), max_size=60).map("".join)
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=400)  # lone surrogates too
VERDICTS = {R.CORRECT, R.WRONG, *FORMAT_RULES}


def boxed_by_definition(text: str) -> list[str]:
    """The definition, written plainly (quadratic): left to right, a complete `\\boxed{...}` is taken
    whole and the scan goes on after it; an unclosed one is skipped and the scan goes on inside it."""
    out, i = [], 0
    while (i := text.find("\\boxed", i)) >= 0:
        j = i + len("\\boxed")
        while j < len(text) and text[j] in " \t":
            j += 1
        nxt = j
        if j < len(text) and text[j] == "{":
            depth, k = 0, j
            while k < len(text):
                if text[k] == "\\" and k + 1 < len(text) and text[k + 1] in "{}":
                    k += 2
                    continue
                depth += {"{": 1, "}": -1}.get(text[k], 0)
                if depth == 0:
                    out.append(text[j + 1 : k])
                    nxt = k + 1
                    break
                k += 1
        i = nxt
    return out


@given(boxy_text)
def test_the_linear_boxed_scan_equals_the_definition(text):
    assert R.boxed_contents(text) == boxed_by_definition(text)


@given(st.text(st.sampled_from("abcab "), max_size=80))
def test_the_repetition_rule_equals_its_regular_expression(text):
    expected = re.search(r"(.{5,}?)\1{4,}", text, re.DOTALL) is not None
    assert R.has_repeated_unit(text) == expected


@given(any_text | boxy_text, st.booleans())
def test_the_format_rules_never_raise_on_any_text(text, truncated):
    violation = R.format_violation(text, truncated)
    assert violation is None or violation in FORMAT_RULES
    R.bad_character_share(text)
    R.last_boxed(text)


@pytest.fixture(scope="module")
def pool():
    with CheckerPool(2) as p:
        yield p


TIMEOUT = 2.0
items = st.builds(R.RewardItem, any_text | boxy_text.map(lambda t: t + "\\boxed{1}"), any_text | st.just("1"),
                  st.booleans())


@settings(max_examples=40)
@given(st.lists(items, min_size=1, max_size=4))
def test_the_pool_answers_every_item_with_a_known_verdict_within_its_bound(pool, batch):
    started = time.monotonic()
    results = pool.map(batch, timeout=TIMEOUT)
    elapsed = time.monotonic() - started
    assert len(results) == len(batch)
    for item, result in zip(batch, results):
        assert result.reason in VERDICTS and result.reward in (1.0, -0.5, -1.0)
        if item.truncated:
            assert result.reason == R.TRUNCATED
    # a hang guard: each answer is bounded by its own clock (plus a worker restart on a timeout)
    assert elapsed < len(batch) * TIMEOUT + 30, elapsed


# Text that leaves a verdict alone: words of allowed characters, single blanks between them.
word = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789.,=+()"), min_size=1, max_size=8)
blank = st.sampled_from([" ", "\n", "\t", "  ", " \n"])
prose = st.lists(st.tuples(word, blank), max_size=12).map(lambda pairs: "".join(w + b for w, b in pairs))
answers = st.sampled_from(["7", "-3", "\\frac{1}{2}", "0.5", "2\\sqrt{2}", "x^{2}+1", "\\pi", "10"])


@given(prose, prose, answers, answers)
def test_text_that_breaks_no_rule_never_changes_a_verdict(before, after, gold, answer):
    """Irrelevant text before the answer, or blanks reshuffled around it, keep the verdict (and the
    extracted answer), unless the new text itself breaks a format rule (then the reward says so)."""
    base = R.check(f"The answer is $\\boxed{{{answer}}}$.", gold)
    assume(base.format_error is None)
    moved = R.check(f"{before}The answer is{after or ' '}$\\boxed{{{answer}}}$.", gold)
    if moved.format_error is None:
        assert (moved.correct, moved.reason, moved.answer) == (base.correct, base.reason, base.answer)
    else:
        assert moved.reward == -1.0 and moved.format_error in (R.REPETITION, R.BAD_CHARACTERS)
