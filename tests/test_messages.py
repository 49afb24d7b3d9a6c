"""Values and library errors as people read them."""

from __future__ import annotations

import pytest

from neurolearn_cli.messages import format_duration, format_p, plain_message


@pytest.mark.parametrize(("text", "plain"), [
    ("Value error, needs at least 2 folds", "needs at least 2 folds"),
    ("Invalid value for 'X': Value error, 'a' is not one of 'b'.", "Invalid value for 'X': 'a' is not one of 'b'."),
    ("Assertion failed, shapes differ", "shapes differ"),
    ("a Value error, mid-sentence stays", "a Value error, mid-sentence stays"),
])
def test_plain_message_strips_pydantic_prefixes(text, plain):
    assert plain_message(text) == plain


def test_format_p_keeps_three_significant_digits():
    assert format_p(0.803921568627451) == "0.804"
    assert format_p(1 / 101) == "0.0099"
    assert format_p(1.0) == "1"
    assert format_p(None) == "not computed"


@pytest.mark.parametrize(("seconds", "text"), [(0.4, "0 s"), (59.6, "1 min 00 s"), (185, "3 min 05 s"),
                                               (3725, "1 h 02 min")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text
