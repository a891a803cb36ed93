"""Reprs of locals and return values: the builtin repr of a flat container
must show what the general path shows."""

from __future__ import annotations

import datetime
import decimal
import re
import uuid
from typing import Any

import pytest

from kolo_django.recording import reprs
from kolo_django.recording.redact import REDACTED

VALUES = [
    1.25,
    None,
    "short",
    "x" * 300,
    [],
    (),
    {},
    (1,),
    ("a",),
    [0.5] * 5,
    list(range(20)),
    list(range(21)),
    tuple(range(25)),
    [True, False, None, 2, 2.5, "s"],
    ["a" * 199] * 3,
    ["x" * 250],
    {"city": "Paris", "rain": False, "hours": list(range(12))},
    {"x": "y" * 150, "z": "w" * 150},
    {1: 2, 3: 4},
    {1: "a", "b": 2},
    {"a": [1, [2, [3]]]},
    {"password": "hunter2-long", "user": "ann"},
    {"token": 1},
    [[1, 2], [3, [4]]],
    {1, 2},
    frozenset({"a"}),
    [float("nan"), float("inf"), -0.0],
    [10**30, -(10**30)],
    list(range(100, 140)),
    ["word"] * 30,
    [1, "a" * 250] * 15,
    {"city": "Paris", "rain": False, "hours": list(range(24))},
    {f"k{i}": i for i in range(25)},
    {i: f"v{i}" for i in range(30)},
    {**{f"k{i}": i for i in range(25)}, "api_key": "abc"},
    {"password": "x", **{f"k{i}": i for i in range(25)}},
]


@pytest.mark.parametrize("limit", [20, 200])
@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_flat_containers_show_what_the_general_path_shows(
    value: Any, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = reprs.safe_repr(value, limit)
    monkeypatch.setattr(reprs, "_flat", lambda value, limit: False)
    monkeypatch.setattr(reprs, "_flat_head", lambda value, limit: None)
    assert fast == reprs.safe_repr(value, limit)
    assert len(fast) <= limit


def test_which_containers_are_flat() -> None:
    assert reprs._flat([1, 2.5, None, True], 200)
    assert reprs._flat(("a", "b"), 200)
    assert reprs._flat({"a": 1, "b": "c"}, 200)
    assert not reprs._flat(["a" * 201], 200)  # shown cut, not whole
    assert not reprs._flat(list(range(21)), 200)  # the first 20 only
    assert not reprs._flat({"password": "x"}, 200)  # hidden
    assert not reprs._flat([[1]], 200)
    assert not reprs._flat({1, 2}, 200)  # set() shows as {…}


def test_longer_containers_of_plain_values_are_shown_by_their_head() -> None:
    assert reprs._flat_head(list(range(30)), 200) == repr(list(range(20)))[:-1] + ", …]"
    assert reprs._flat_head(tuple("ab" * 15), 200) == repr(tuple("ab" * 10))[:-1] + ", …)"
    many = {f"k{i}": i for i in range(25)}
    assert reprs._flat_head(many, 200) == repr(dict(list(many.items())[:20]))[:-1] + ", …}"
    assert reprs._flat_head({"password": "x", **many}, 200) is None  # hidden
    assert reprs._flat_head({**many, "token": "x"}, 200) is not None  # not among the 20 shown
    assert reprs._flat_head(["x" * 201] * 21, 200) is None  # shown cut
    assert reprs._flat_head([[1]] * 21, 200) is None
    assert reprs._flat_head(set(range(30)), 200) is None


def test_secret_keys_stay_hidden() -> None:
    shown = reprs.safe_repr({"password": "hunter2", "user": "ann"}, 200)
    assert shown == f"{{'password': {REDACTED}, 'user': 'ann'}}"


def test_an_int_too_long_for_str_is_shown_as_a_failed_repr() -> None:
    huge = 10**5000  # beyond the default limit of 4,300 digits
    assert reprs.safe_repr(huge) == "<int (repr failed: ValueError)>"
    assert reprs.safe_repr([1, huge]) == "<list (repr failed: ValueError)>"
    assert reprs.safe_locals({"n": huge, "m": 2}, 200, 25) == {
        "n": "<int (repr failed: ValueError)>",
        "m": "2",
    }


class _BrokenZone(datetime.tzinfo):
    def utcoffset(self, dt: Any) -> datetime.timedelta:
        return datetime.timedelta(0)

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _Day(datetime.date):
    def __repr__(self) -> str:
        return "a day"


@pytest.mark.parametrize(
    "value",
    [
        datetime.datetime(2026, 11, 22, 9, 30, tzinfo=datetime.timezone.utc),
        datetime.date(2026, 11, 22),
        datetime.timedelta(seconds=90),
        decimal.Decimal("1.50"),
        uuid.UUID(int=7),
        re.match("a(b)", "abc"),
        re.compile("x+"),
        b"\x00bytes",
        reprs.safe_repr,
        len,
        decimal.Decimal,
    ],
)
def test_builtin_reprs_are_shown_as_they_are(value: Any) -> None:
    assert reprs._kind(type(value)) == "builtin"
    assert reprs.safe_repr(value) == repr(value)


def test_builtin_repr_errors_and_overrides() -> None:
    # A datetime's repr runs its tzinfo's: an error there is caught.
    broken = datetime.datetime(2026, 11, 22, tzinfo=_BrokenZone())
    assert reprs.safe_repr(broken) == "<datetime (repr failed: RuntimeError)>"
    # A subclass with a __repr__ of its own is user code: the guarded path.
    assert reprs._kind(_Day) == "repr"
    assert reprs.safe_repr(_Day(2026, 1, 1)) == "a day"


def test_short_string_locals_match_safe_repr() -> None:
    values = {"a": "plain", "b": "\x00" * 60, "c": "x" * 200, "d": "é'\"", "e": "y" * 201}
    assert reprs.safe_locals(values, 200, 25) == {k: reprs.safe_repr(v) for k, v in values.items()}
    assert len(reprs.safe_locals(values, 200, 25)["b"]) == 200
