"""The Swift tool's lenient parameters, and the InvalidParams each misuse raises."""

from __future__ import annotations

import pytest

from imsg.rpc.errors import InvalidParams
from imsg.rpc.params import Params


def test_integers_from_numbers_and_strings() -> None:
    p = Params({"a": 42, "b": "42", "c": " -7 ", "d": 3.0, "e": None})
    assert (p.integer("a"), p.integer("b"), p.integer("c"), p.integer("d")) == (42, 42, -7, 3)
    assert p.integer("e", 5) == 5 and p.integer("missing") is None


@pytest.mark.parametrize("value", [True, "4.5", 4.5, "", "0x10", [1], 2**63, "9" * 40])
def test_integers_refused(value: object) -> None:
    with pytest.raises(InvalidParams, match="n must be an integer"):
        Params({"n": value}).integer("n")


def test_integer_bounds_and_required() -> None:
    with pytest.raises(InvalidParams, match="at least 1"):
        Params({"n": 0}).integer("n", minimum=1)
    with pytest.raises(InvalidParams, match="at most 9"):
        Params({"n": 10}).integer("n", maximum=9)
    with pytest.raises(InvalidParams, match="n is required"):
        Params({}).require_integer("n")


def test_aliases_first_name_wins() -> None:
    p = Params({"debounceMs": "10", "debounce_ms": 20})
    assert p.integer("debounce_ms", aliases=("debounceMs",)) == 20
    assert Params({"debounceMs": "10"}).integer("debounce_ms", aliases=("debounceMs",)) == 10


def test_booleans() -> None:
    p = Params({"a": True, "b": "false", "c": "TRUE"})
    assert (p.boolean("a"), p.boolean("b"), p.boolean("c"), p.boolean("d")) == (
        True, False, True, False)
    for value in (1, "yes", []):
        with pytest.raises(InvalidParams, match="x must be true or false"):
            Params({"x": value}).boolean("x")


def test_strings_and_lists() -> None:
    p = Params({"to": 15555550123, "list": "a, b,,c ", "arr": [" x ", "y"]})
    assert p.string("to") == "15555550123"
    assert p.strings("list") == ["a", "b", "c"] and p.strings("arr") == ["x", "y"]
    assert p.strings("none") == []
    with pytest.raises(InvalidParams, match="s must be a string"):
        Params({"s": {"a": 1}}).string("s")
    with pytest.raises(InvalidParams, match="array of strings"):
        Params({"l": ["a", 1]}).strings("l")
    with pytest.raises(InvalidParams, match="q is required"):
        Params({"q": "  "}).require_string("q")


def test_positional_params_are_refused_unless_empty() -> None:
    assert Params([]).integer("limit", 20) == 20
    with pytest.raises(InvalidParams, match="named parameters"):
        Params([1])
