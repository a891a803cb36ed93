"""Calls of project code, with their locals and return values."""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path
from django.views.decorators.debug import sensitive_variables

from kolo_django import trace
from kolo_django.recording.redact import REDACTED
from tests.helpers_recording import only_trace

MODULE = __name__


def _numbers(limit: int) -> Iterator[int]:
    for n in range(limit):
        yield n * n


def _total(values: list[int]) -> int:
    return sum(values)


def _view(request: HttpRequest) -> HttpResponse:
    password = "pw-in-a-local"  # noqa: S105
    squares = list(_numbers(4))
    long_text = "y" * 500
    return HttpResponse(f"{_total(squares)} {len(password)} {len(long_text)}")


def _interleaved(request: HttpRequest) -> HttpResponse:
    # A generator suspended while other calls run, then abandoned unfinished.
    totals = []
    for n in _numbers(3):
        totals.append(_total([n]))
    first = next(_numbers(10))
    return HttpResponse(f"{totals} {first}")


# A library function (not project code) marked @sensitive_variables() that
# calls back into project code, as django.contrib.auth.authenticate() calls a
# project's authentication backend.
_library: dict[str, Any] = {
    "__name__": "elsewhere.library",
    "sensitive_variables": sensitive_variables,
}
exec(
    compile(
        "@sensitive_variables()\ndef check(callback, token):\n    return callback(token)\n",
        "<library>",
        "exec",
    ),
    _library,
)


def _backend(token: str) -> str:
    shown = token.upper()
    return shown


def _sensitive_library(request: HttpRequest) -> HttpResponse:
    plain = _total([1, 2])
    return HttpResponse(f"{_library['check'](_backend, 'tok-4471-abcdef')} {plain}")


def _catching() -> Iterator[str]:
    while True:
        try:
            yield "ok"
        except ValueError:
            yield "caught"


def _thrown(request: HttpRequest) -> HttpResponse:
    # A generator resumed by throw() that catches and yields again, then closed.
    gen = _catching()
    first = next(gen)
    second = gen.throw(ValueError("x"))
    gen.close()
    return HttpResponse(f"{first} {second} {_total([1])}")


def _comprehensions(request: HttpRequest) -> HttpResponse:
    doubled = [_total([n, n]) for n in range(2)]
    by_key = {str(n): _total([n]) for n in range(2)}
    unique = {_total([n]) for n in range(2)}
    lazy = sum(_total([n]) for n in range(2))
    return HttpResponse(f"{doubled} {sorted(by_key)} {sorted(unique)} {lazy}")


class _Shown:
    """A local whose __repr__ runs project code and a query."""

    def __repr__(self) -> str:
        from django.contrib.auth.models import User

        return f"<Shown {_total([1, 2])} {User.objects.count()}>"


def _shown(request: HttpRequest) -> HttpResponse:
    shown = _Shown()
    return HttpResponse(repr(shown))


urlpatterns = [
    path("shown/", _shown),
    path("calls/", _view),
    path("comprehensions/", _comprehensions),
    path("thrown/", _thrown),
    path("interleaved/", _interleaved),
    path("sensitive-library/", _sensitive_library),
]

pytestmark = pytest.mark.urls(__name__)


def config(**extra: Any) -> dict[str, Any]:
    return {"ENABLED": True, "RECORD_DURING_TESTS": True, "CALLS_INCLUDE": [MODULE], **extra}


def calls_and_returns(document: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[int, Any]]:
    calls = [e for e in document["events"] if e["type"] == "call"]
    returns = {e["id"]: e for e in document["events"] if e["type"] == "return"}
    return calls, returns


def recorded_calls(traces: Any) -> tuple[dict[str, Any], list[dict[str, Any]], dict[int, Any]]:
    """The only stored trace's document, its call events and its returns by call id."""
    _obj, document = only_trace(traces)
    return (document, *calls_and_returns(document))


@override_settings(KOLO_DJANGO=config(MAX_REPR_LENGTH=40))
def test_call_tree(client: Client, traces: Any, db: None) -> None:
    assert client.get("/calls/").content == b"14 13 500"
    document, calls, returns = recorded_calls(traces)
    # The generator is resumed five times but called once.
    assert [c["function"] for c in calls] == ["_view", "_numbers", "_total"]
    view, numbers, total = calls
    assert view["parent"] is None and view["depth"] == 0
    assert (numbers["parent"], numbers["depth"]) == (view["id"], 1)
    assert (total["parent"], total["depth"]) == (view["id"], 1)
    assert [c["line"] for c in calls] == [
        f.__code__.co_firstlineno for f in (_view, _numbers, _total)
    ]
    assert numbers["file"].endswith("test_recording_calls.py")
    # Locals are taken once, at the return: call events carry none.
    assert not any("locals" in c for c in calls)
    assert returns[numbers["id"]]["locals"]["limit"] == "4"
    assert returns[total["id"]]["value"] == "14"
    assert returns[view["id"]]["value"] == "<HttpResponse status_code=200>"
    assert set(returns) == {view["id"], numbers["id"], total["id"]}
    view_locals = returns[view["id"]]["locals"]
    assert view_locals["password"] == "[REDACTED]"
    assert view_locals["squares"] == "[0, 1, 4, 9]"
    assert len(view_locals["long_text"]) == 40 and view_locals["long_text"].endswith("…")


@override_settings(KOLO_DJANGO=config())
def test_comprehensions_are_not_calls(client: Client, traces: Any, db: None) -> None:
    # List, dict and set comprehensions are part of their function, as Python
    # 3.12 compiles them; a generator expression stays a call on every version.
    assert client.get("/comprehensions/").content == b"[0, 2] ['0', '1'] [0, 1] 1"
    _document, calls, returns = recorded_calls(traces)
    functions = [c["function"].rsplit(".", 1)[-1] for c in calls]
    assert functions.count("_total") == 8
    assert set(functions) == {"_comprehensions", "_total", "<genexpr>"}
    view = calls[0]
    by_parent = [c["parent"] for c in calls if c["function"] == "_total"]
    assert by_parent.count(view["id"]) == 6
    assert returns[view["id"]]["locals"]["doubled"] == "[0, 2]"


@override_settings(KOLO_DJANGO=config(CAPTURE_LOCALS=False))
def test_without_locals(client: Client, traces: Any, db: None) -> None:
    client.get("/calls/")
    document, calls, returns = recorded_calls(traces)
    assert calls and not any("locals" in e for e in [*calls, *returns.values()])


@override_settings(KOLO_DJANGO=config(MAX_LOCALS=1))
def test_max_locals(client: Client, traces: Any, db: None) -> None:
    client.get("/calls/")
    document, calls, returns = recorded_calls(traces)
    view_locals = returns[calls[0]["id"]]["locals"]
    assert list(view_locals) == ["request", "…"]
    assert view_locals["…"] == "3 more"


@override_settings(KOLO_DJANGO=config(CALLS_EXCLUDE=[MODULE]))
def test_calls_exclude_wins(client: Client, traces: Any, db: None) -> None:
    client.get("/calls/")
    _obj, document = only_trace(traces)
    assert calls_and_returns(document) == ([], {})


def test_test_modules_are_not_project_code(client: Client, traces: Any, db: None) -> None:
    client.get("/calls/")
    _obj, document = only_trace(traces)
    assert calls_and_returns(document) == ([], {})


@override_settings(KOLO_DJANGO=config())
def test_suspended_generators_are_not_parents(client: Client, traces: Any, db: None) -> None:
    assert client.get("/interleaved/").content == b"[0, 1, 4] 0"
    document, calls, returns = recorded_calls(traces)
    assert [c["function"] for c in calls] == [
        "_interleaved",
        "_numbers",
        "_total",
        "_total",
        "_total",
        "_numbers",
    ]
    view = calls[0]
    # Every call sits under the view, none under a generator between its yields.
    assert all(c["parent"] == view["id"] for c in calls[1:])
    assert returns[view["id"]]["value"] == "<HttpResponse status_code=200>"
    # One return per call at most (the abandoned generator returns when it is
    # closed, if it is closed during the request).
    returned = [e["id"] for e in document["events"] if e["type"] == "return"]
    assert len(returned) == len(set(returned)) and set(returned) <= {c["id"] for c in calls}
    assert {c["id"] for c in calls[:5]} <= set(returned)


@pytest.mark.parametrize("path", ["/calls/", "/interleaved/", "/thrown/", "/comprehensions/"])
@override_settings(KOLO_DJANGO=config())
def test_the_stored_calls_read_back_as_recorded(
    client: Client, traces: Any, db: None, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """Storage leaves out the ids, parents, depths and times that the events'
    order implies, generators suspended between calls included; the document
    read back is the one recorded, key for key."""
    from kolo_django import storage

    recorded: list[dict[str, Any]] = []
    prepare = storage._prepare

    def keep(document: dict[str, Any], secrets: set[str]) -> Any:
        recorded.append(copy.deepcopy(document))
        return prepare(document, secrets)

    monkeypatch.setattr(storage, "_prepare", keep)
    client.get(path)
    _obj, document = only_trace(traces)
    assert document == recorded[0]
    assert [list(e) for e in document["events"]] == [list(e) for e in recorded[0]["events"]]
    packed = trace.pack(recorded[0])["events"]
    assert sum(e["type"] in ("call", "return") for e in packed) >= 3
    assert not any("t" in e for e in packed if e["type"] in ("call", "return"))


@override_settings(KOLO_DJANGO=config())
def test_what_a_repr_of_a_local_runs_is_not_recorded(client: Client, traces: Any, db: None) -> None:
    assert client.get("/shown/").content == b"<Shown 3 0>"
    document, calls, returns = recorded_calls(traces)
    # The view's own repr() is recorded; the one taken of its local is not.
    assert [c["function"] for c in calls] == ["_shown", "_Shown.__repr__", "_total"]
    assert len([e for e in document["events"] if e["type"] == "sql"]) == 1
    assert returns[calls[0]["id"]]["locals"]["shown"] == "<Shown 3 0>"


@override_settings(KOLO_DJANGO=config())
def test_throw_into_a_suspended_generator(client: Client, traces: Any, db: None) -> None:
    assert client.get("/thrown/").content == b"ok caught 1"
    document, calls, returns = recorded_calls(traces)
    assert [c["function"] for c in calls] == ["_thrown", "_catching", "_total"]
    view, catching, total = calls
    assert catching["parent"] == view["id"] and total["parent"] == view["id"]
    # One return each: the generator's when close() ends it, not at its yields.
    returned = [e["id"] for e in document["events"] if e["type"] == "return"]
    assert sorted(returned) == sorted(c["id"] for c in calls)
    assert returned.index(catching["id"]) < returned.index(total["id"])


@override_settings(KOLO_DJANGO=config())
def test_sensitive_variables_of_a_library_caller(client: Client, traces: Any, db: None) -> None:
    assert client.get("/sensitive-library/").content == b"TOK-4471-ABCDEF 3"
    document, calls, returns = recorded_calls(traces)
    # The wrapper and the library function are not calls of the project.
    assert [c["function"] for c in calls] == ["_sensitive_library", "_total", "_backend"]
    backend = returns[calls[2]["id"]]
    assert backend["value"] == REDACTED and set(backend["locals"].values()) == {REDACTED}
    # A call beside it, under no wrapper, keeps its locals.
    assert returns[calls[1]["id"]]["locals"]["values"] == "[1, 2]"


def _profiler_view(request: HttpRequest) -> HttpResponse:
    from kolo_django.recording import frames

    profile = type(sys.getprofile())
    return HttpResponse(f"{frames._speedups.mode()} {profile.__module__}.{profile.__qualname__}")


urlpatterns.append(path("profiler/", _profiler_view))


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ uses sys.monitoring")
@override_settings(KOLO_DJANGO=config())
def test_python_311_captures_with_the_c_evaluation_hook(
    client: Client, traces: Any, db: None
) -> None:
    from kolo_django.recording import frames

    # Built by `pip install`: the pure Python fallback must not be used unnoticed.
    assert frames._speedups is not None
    if sys.version_info >= (3, 11):
        # No profile function: the interpreter stays out of its tracing mode.
        assert client.get("/profiler/").content == b"eval builtins.NoneType"
    else:
        assert client.get("/profiler/").content == b"profile kolo_django._speedups.State"
    assert sys.getprofile() is None and frames._speedups.mode() is None  # off after


@pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the evaluation hook is 3.11's")
@pytest.mark.parametrize(
    "test",
    [
        test_call_tree,
        test_suspended_generators_are_not_parents,
        test_throw_into_a_suspended_generator,
    ],
)
@override_settings(KOLO_DJANGO=config())
def test_python_311_c_profile_function_where_the_hook_is_not_used(
    test: Any, client: Client, traces: Any, db: None
) -> None:
    from kolo_django.recording import frames

    # As where another tool (a debugger) has its own evaluation function.
    frames._speedups.use_eval_hook(False)
    try:
        assert client.get("/profiler/").content == b"profile kolo_django._speedups.State"
        traces.all().delete()
        test(client, traces, db)
    finally:
        frames._speedups.use_eval_hook(True)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ uses sys.monitoring")
@override_settings(KOLO_DJANGO=config(MAX_REPR_LENGTH=40))
def test_python_311_fallback_without_the_c_module(
    client: Client, traces: Any, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kolo_django.recording import frames

    monkeypatch.setattr(frames, "_speedups", None)
    test_call_tree(client, traces, db)
    assert sys.gettrace() is None


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="3.12+ uses sys.monitoring")
@override_settings(KOLO_DJANGO=config())
def test_another_profiler_is_left_alone(client: Client, traces: Any, db: None) -> None:
    def other(frame: Any, event: str, arg: Any) -> None:
        return None

    sys.setprofile(other)
    try:
        assert client.get("/calls/").content == b"14 13 500"
        assert sys.getprofile() is other
    finally:
        sys.setprofile(None)
    _obj, document = only_trace(traces)
    assert not [e for e in document["events"] if e["type"] == "call"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12's")
@override_settings(KOLO_DJANGO=config())
def test_python_312_library_code_stays_disabled_between_requests(
    client: Client, traces: Any, db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kolo_django.recording import frames

    mon = sys.monitoring
    client.get("/calls/")
    tool = frames._tool_id
    # Left on after the request: switching them off would re-enable the events
    # of every code object that ran in between.
    assert tool is not None and mon.get_events(tool) != 0
    disabled: list[set[Any]] = []

    class Decisions(dict):  # type: ignore[type-arg]
        def get(self, code: Any, default: Any = None) -> Any:
            decision = super().get(code, default)
            if decision is False and sys._getframe(1).f_code.co_name == "_mon_start":
                disabled[-1].add(code)  # the callback returns DISABLE
            return decision

    monkeypatch.setattr(frames, "_project_code", Decisions(frames._project_code))
    for _ in range(2):
        disabled.append(set())
        assert client.get("/calls/").content == b"14 13 500"
    assert not disabled[0] & disabled[1]
    _document, calls, _returns = recorded_calls(traces.filter(id=traces.latest("id").id))
    assert [c["function"] for c in calls] == ["_view", "_numbers", "_total"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12's")
@override_settings(KOLO_DJANGO=config())
def test_python_312_recording_beside_cprofile(client: Client, traces: Any, db: None) -> None:
    import cProfile
    import pstats

    from kolo_django.recording import frames

    profiler = cProfile.Profile()
    profiler.enable()  # takes sys.monitoring's PROFILER_ID
    try:
        assert client.get("/calls/").content == b"14 13 500"
    finally:
        profiler.disable()
    # Left to profilers (PROFILER_ID) and to Kolo (3).
    assert frames._tool_id not in (sys.monitoring.PROFILER_ID, 3)
    assert sys.monitoring.get_tool(3) is None
    profiled = {name for (_file, _line, name) in pstats.Stats(profiler).stats}  # type: ignore[attr-defined]
    assert {"_view", "_total"} <= profiled
    _document, calls, _returns = recorded_calls(traces)
    assert [c["function"] for c in calls] == ["_view", "_numbers", "_total"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring is 3.12's")
def test_python_312_events_off_when_the_settings_change(
    client: Client, traces: Any, db: None
) -> None:
    from kolo_django.recording import frames

    with override_settings(KOLO_DJANGO=config()):
        client.get("/calls/")
        assert sys.monitoring.get_events(frames._tool_id) != 0
    # Decisions made under the old CALLS_INCLUDE are dropped, with the events.
    assert sys.monitoring.get_events(frames._tool_id) == 0
    assert not frames._project_code
    with override_settings(KOLO_DJANGO=config(CALLS_EXCLUDE=[MODULE])):
        client.get("/calls/")
    assert len(traces.all()) == 2
    _document, calls, _returns = recorded_calls(traces.filter(id=traces.latest("id").id))
    assert calls == []
