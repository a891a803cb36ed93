"""User-code function calls with their locals.

Python >= 3.12 uses ``sys.monitoring``: a code object outside the project is
disabled at its first call, so library code costs nothing afterwards. Python
3.11 uses the frame evaluation hook of ``kolo_django._speedups`` (PEP 523):
the interpreter stays out of its tracing mode, the hook answers from a
decision cached on each code object without running any Python, and hands
only project frames to the callbacks here, at their start and after their
end. Where another tool has its own evaluation function, and on 3.10, the
module's C profile function does the same in the request's thread. Where the
C module was not built, ``sys.settrace`` does it more slowly: its global trace
function answers from a per-code-object cache and traces only the returns of
project frames.

Locals are taken once, when a call returns (or raises): by then they hold the
arguments and everything the function computed. A call event has none.
"""

from __future__ import annotations

import dis
import functools
import inspect
import logging
import os
import sys
import sysconfig
import threading
from functools import lru_cache
from threading import get_ident
from types import CodeType, FrameType
from typing import Any

from django.conf import settings

from ..conf import get_config
from .recorder import Recorder, _current, fault
from .redact import REDACTED
from .reprs import _state as _reprs_state
from .reprs import safe_locals, safe_repr

logger = logging.getLogger("kolo_django")
_project_code: dict[CodeType, bool] = {}
# Code object -> (qualified name, module, file) for its call events.
_code_info: dict[CodeType, tuple[str, str, str]] = {}
_lock = threading.Lock()
MONITORING = sys.version_info >= (3, 12)
_tool_id: int | None = None
_current_get = _current.get
_events_on = False

_speedups: Any = None
if not MONITORING:
    try:
        from .. import _speedups
    except ImportError:  # built without a C compiler: sys.settrace instead
        pass


@lru_cache(maxsize=1)
def _roots() -> tuple[tuple[str, ...], tuple[str, ...]]:
    base = getattr(settings, "BASE_DIR", None) or os.getcwd()
    project = (os.path.realpath(str(base)) + os.sep,)
    excluded = {os.path.dirname(os.path.realpath(__file__)).rsplit(os.sep, 1)[0] + os.sep}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            excluded.add(os.path.realpath(path) + os.sep)
    import django

    excluded.add(os.path.dirname(os.path.realpath(django.__file__)) + os.sep)
    return project, tuple(excluded)


def reset_caches() -> None:
    _project_code.clear()
    _code_info.clear()
    _wrapper_codes.clear()
    _roots.cache_clear()
    global _events_on
    if MONITORING and _tool_id is not None:
        # Off until the next recorded request; code objects disabled under
        # the old decisions get their events back.
        sys.monitoring.set_events(_tool_id, 0)
        _events_on = False
        sys.monitoring.restart_events()
    if _speedups is not None:
        _speedups.reset()


# Code objects of Django's @sensitive_variables wrapper. Their calls are
# followed, not recorded: the stack is searched for one only while one runs.
_wrapper_codes: set[CodeType] = set()
_WRAPPER = ("sensitive_variables_wrapper", "django.views.decorators.debug")
# Functions of their own before Python 3.12, inlined into the enclosing
# function since (PEP 709): never calls, so a trace has the same call tree on
# every version, and their work shows in the enclosing function's locals.
_COMPREHENSIONS = frozenset(("<listcomp>", "<setcomp>", "<dictcomp>"))
_CO_COROUTINE = inspect.CO_COROUTINE


def is_project_code(code: CodeType, module: str, config: dict[str, Any]) -> bool:
    decision = _project_code.get(code)
    if decision is None:
        if (code.co_name, module) == _WRAPPER:
            _wrapper_codes.add(code)
            decision = True
        elif code.co_name in _COMPREHENSIONS:
            decision = False
        else:
            decision = _decide(code.co_filename, module, config)
        _project_code[code] = decision
    return decision


def _decide(filename: str, module: str, config: dict[str, Any]) -> bool:
    if any(module == p or module.startswith(p + ".") for p in config["CALLS_EXCLUDE"]):
        return False
    if any(module == p or module.startswith(p + ".") for p in config["CALLS_INCLUDE"]):
        return True
    if filename.startswith("<") or module.startswith("kolo_django"):
        return False
    path = os.path.realpath(filename)
    project, excluded = _roots()
    if "site-packages" in path or "dist-packages" in path or ".venv" in path.split(os.sep):
        return False
    if any(path.startswith(root) for root in excluded) and not any(
        path.startswith(p) for p in project
    ):
        return False
    if ".migrations." in f".{module}." or module.endswith(".migrations"):
        return False
    return any(path.startswith(p) for p in project)


class CallTracker:
    """Per-recorder call stacks, one per thread."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.config = recorder.config
        self.capture_locals = bool(recorder.config["CAPTURE_LOCALS"])
        self.limit = int(recorder.config["MAX_REPR_LENGTH"])
        self.max_locals = int(recorder.config["MAX_LOCALS"])
        # (call id, frame) pairs: a return is matched to its own call, never to
        # whatever happens to be on top.
        self.stacks: dict[int, list[tuple[int, FrameType]]] = {}
        self.next_id = 0
        # Set on our first fault: call capture stops for the rest of the request.
        self.failed = False
        # Generator and coroutine frames between a yield and their resumption.
        self.suspended: dict[FrameType, int] = {}
        # sys.settrace only: the offset a suspended frame was resumed at.
        self.resumed_at: dict[FrameType, int] = {}
        # Call id -> what @sensitive_variables marked, for its return event.
        self.sensitive: dict[int, Any] = {}
        # @sensitive_variables wrappers running (in any of the request's threads).
        self.wrappers = 0

    def fail(self) -> None:
        if not self.failed:
            self.failed = True
            fault("calls", self.recorder, "a call")

    def _stack(self) -> list[tuple[int, FrameType]]:
        return self.stacks.setdefault(threading.get_ident(), [])

    def on_call(self, frame: FrameType) -> None:
        # Runs for every project call: attribute and method lookups are kept
        # few, and Recorder.add's bound check is inlined.
        code = frame.f_code
        if code in _wrapper_codes:
            self.wrappers += 1
            return
        recorder = self.recorder
        if recorder.mode is not None or recorder.own_work_depth:
            return
        stack = self.stacks.get(get_ident())
        if stack is None:
            stack = self._stack()
        self.next_id += 1
        call_id = self.next_id
        info = _code_info.get(code)
        if info is None:
            info = _code_info[code] = _describe(code, frame)
        parent = stack[-1] if stack else None
        stack.append((call_id, frame))
        events = recorder.events
        if len(events) >= recorder.max_events:
            recorder.dropped_events += 1
            return
        if parent is None or self.wrappers or code.co_flags & _CO_COROUTINE:
            sensitive = self._sensitive(frame, parent)
        else:
            # No wrapper runs below the parent: only its own marks apply.
            sensitive = self.sensitive.get(parent[0]) if self.sensitive else None
        if sensitive:
            self.sensitive[call_id] = sensitive
        events.append(
            {
                "type": "call",
                "id": call_id,
                "parent": parent[0] if parent else None,
                "depth": len(stack) - 1,
                "function": info[0],
                "module": info[1],
                "file": info[2],
                # Where a call starts: its f_lineno there, without working it out.
                "line": code.co_firstlineno,
                "t": recorder.elapsed_ms(),
            }
        )

    def _sensitive(self, frame: FrameType, parent: tuple[int, FrameType] | None) -> Any:
        """:func:`sensitive_variables`, walking only up to the recorded parent
        call, whose own answer covers the rest of the stack, and only while a
        wrapper runs below it."""
        if parent is None:
            return sensitive_variables(frame)
        inherited = self.sensitive.get(parent[0])
        if inherited:
            return inherited
        return sensitive_variables(frame, stop=parent[1], walk=self.wrappers > 0)

    def on_return(
        self, frame: FrameType, value: Any, exception: BaseException | None = None
    ) -> None:
        if frame.f_code in _wrapper_codes:
            self.wrappers = max(0, self.wrappers - 1)
            return
        recorder = self.recorder
        if recorder.mode is not None or recorder.own_work_depth:
            return
        if self.suspended:
            self.suspended.pop(frame, None)
        stack = self.stacks.get(get_ident())
        if not stack or stack[-1][1] is not frame:
            return  # a frame whose call was not recorded
        call_id = stack.pop()[0]
        sensitive = self.sensitive.pop(call_id, None) if self.sensitive else None
        events = recorder.events
        if len(events) >= recorder.max_events:
            recorder.dropped_events += 1
            return
        # This event's reprs share one guard (reprs._guarded_repr): each
        # __repr__ of user code runs with the recorder silent, as set here.
        _reprs_state.held = recorder
        try:
            if exception is not None:
                event: dict[str, Any] = {
                    "type": "return",
                    "id": call_id,
                    "exception": f"{type(exception).__name__}: {safe_repr(str(exception), self.limit)}",
                }
            else:
                if sensitive == "__ALL__":
                    shown = REDACTED
                elif value is None:  # most returns (__init__, setters...)
                    shown = "None"
                else:
                    shown = safe_repr(value, self.limit)
                event = {"type": "return", "id": call_id, "value": shown}
            if self.capture_locals:
                event["locals"] = safe_locals(
                    frame.f_locals, self.limit, self.max_locals, sensitive, recorder.secrets
                )
        finally:
            _reprs_state.held = None
        event["t"] = recorder.elapsed_ms()
        events.append(event)

    def on_suspend(self, frame: FrameType) -> None:
        """A generator or coroutine yielded: it leaves the stack, not the call tree."""
        stack = self.stacks.get(threading.get_ident())
        if stack and stack[-1][1] is frame:
            self.suspended[frame] = stack.pop()[0]

    def on_resume(self, frame: FrameType) -> bool:
        """Put a suspended frame back on the stack; False if it was never recorded."""
        call_id = self.suspended.pop(frame, None)
        if call_id is None:
            return False
        self._stack().append((call_id, frame))
        return True


def _describe(code: CodeType, frame: FrameType) -> tuple[str, str, str]:
    function = code.co_qualname if hasattr(code, "co_qualname") else code.co_name
    return function, frame.f_globals.get("__name__", ""), _relative(code.co_filename)


def sensitive_variables(frame: FrameType, stop: FrameType | None = None, walk: bool = True) -> Any:
    """What ``@sensitive_variables`` marked for this frame: ``"__ALL__"``, a
    tuple of names, or None. Found the way Django's error reports find it: the
    decorator's wrapper among the callers (so the functions a decorated one
    calls are covered too), or for a coroutine its registered code location."""
    code = frame.f_code
    if code.co_flags & inspect.CO_COROUTINE and code.co_name != "sensitive_variables_wrapper":
        try:
            from django.views.decorators.debug import coroutine_functions_to_sensitive_variables
        except ImportError:  # older Django: no async support in the decorator
            coroutine_functions_to_sensitive_variables = {}
        found = coroutine_functions_to_sensitive_variables.get(
            hash(f"{code.co_filename}:{code.co_firstlineno}")
        )
        if found:
            return found
    if not walk:
        return None
    current_frame: FrameType | None = frame
    while current_frame is not None and current_frame is not stop:
        # Compare the name first: reading f_locals of every caller is costly.
        if current_frame.f_code.co_name == "sensitive_variables_wrapper":
            wrapper = current_frame.f_locals.get("sensitive_variables_wrapper")
            if wrapper is not None:
                return getattr(wrapper, "sensitive_variables", None)
        current_frame = current_frame.f_back
    return None


def _relative(filename: str) -> str:
    project = _roots()[0][0]
    return filename[len(project) :] if filename.startswith(project) else filename


# --- Python >= 3.12: sys.monitoring -------------------------------------------------


def _tracker() -> CallTracker | None:
    recorder = _current_get()
    tracker = getattr(recorder, "calls", None) if recorder is not None else None
    return None if tracker is None or tracker.failed else tracker


# An exception escaping a profile or monitoring callback would be raised in the
# user's own frame, so every callback body is guarded. Each asks for the
# decision first: a project function called while nothing is recorded costs
# a dictionary lookup and a context variable read.


def _mon_start(code: CodeType, offset: int) -> Any:
    tracker = None
    try:
        decision = _project_code.get(code)
        if decision is False:
            return sys.monitoring.DISABLE
        # _tracker(), inlined here and below: these run for every project call.
        recorder = _current_get()
        tracker = recorder.calls if recorder is not None else None
        if tracker is not None and tracker.failed:
            tracker = None
        if decision is None:
            # Decided in any thread, recorded or not (the storage writer's,
            # a request left unrecorded): library code is then disabled for
            # good wherever it runs first.
            config = tracker.config if tracker is not None else get_config()
            module = sys._getframe(1).f_globals.get("__name__", "")
            if not is_project_code(code, module, config):
                return sys.monitoring.DISABLE
        # While the recorder is silent (a repr of a local runs project code)
        # or busy with its own work, on_call would drop the call: its frame
        # is not even fetched. A wrapper's call is counted whatever the mode.
        if tracker is not None and (
            (recorder.mode is None and not recorder.own_work_depth) or code in _wrapper_codes
        ):
            tracker.on_call(sys._getframe(1))
    except Exception:
        if tracker is not None:
            tracker.fail()
    return None


def _mon_return(code: CodeType, offset: int, retval: Any) -> Any:
    decision = _project_code.get(code)
    if decision is False:
        return sys.monitoring.DISABLE
    if decision:
        recorder = _current_get()
        tracker = recorder.calls if recorder is not None else None
        if (
            tracker is not None
            and not tracker.failed
            and ((recorder.mode is None and not recorder.own_work_depth) or code in _wrapper_codes)
        ):
            try:
                tracker.on_return(sys._getframe(1), retval)
            except Exception:
                tracker.fail()
    return None


def _mon_yield(code: CodeType, offset: int, retval: Any) -> Any:
    decision = _project_code.get(code)
    if decision is False:
        return sys.monitoring.DISABLE
    if decision:
        tracker = _tracker()
        if tracker is not None:
            try:
                tracker.on_suspend(sys._getframe(1))
            except Exception:
                tracker.fail()
    return None


def _mon_resume(code: CodeType, offset: int, *exception: BaseException) -> Any:
    # PY_RESUME, and PY_THROW (a throw() into a suspended generator).
    decision = _project_code.get(code)
    if decision is False:
        return sys.monitoring.DISABLE if not exception else None
    if decision:
        tracker = _tracker()
        if tracker is not None:
            try:
                tracker.on_resume(sys._getframe(1))
            except Exception:
                tracker.fail()
    return None


def _mon_unwind(code: CodeType, offset: int, exception: BaseException) -> Any:
    if _project_code.get(code):
        tracker = _tracker()
        if tracker is not None:
            try:
                tracker.on_return(sys._getframe(1), None, exception)
            except Exception:
                tracker.fail()
    return None


def _monitoring_start() -> None:
    """Claim a tool id (once) and switch its events on. They stay on until the
    settings change (reset_caches): switched off, every code object that runs
    meanwhile (the handler's, the test client's) is re-instrumented and loses
    its disabled events, and each of them then costs a callback again in the
    next recorded request. Between recordings only project functions call
    back, and return at once."""
    global _tool_id, _events_on
    mon = sys.monitoring
    events = mon.events
    if _tool_id is None:
        # Id 4 first: profilers (cProfile, pyinstrument) take PROFILER_ID,
        # and Kolo takes 3.
        for candidate in (4, 3, mon.PROFILER_ID, 5):
            if mon.get_tool(candidate) is None:
                break
        else:
            return
        mon.use_tool_id(candidate, "kolo_django")
        mon.register_callback(candidate, events.PY_START, _mon_start)
        mon.register_callback(candidate, events.PY_RETURN, _mon_return)
        mon.register_callback(candidate, events.PY_UNWIND, _mon_unwind)
        mon.register_callback(candidate, events.PY_YIELD, _mon_yield)
        mon.register_callback(candidate, events.PY_RESUME, _mon_resume)
        mon.register_callback(candidate, events.PY_THROW, _mon_resume)
        _tool_id = candidate
    mon.set_events(
        _tool_id,
        events.PY_START
        | events.PY_RETURN
        | events.PY_UNWIND
        | events.PY_YIELD
        | events.PY_RESUME
        | events.PY_THROW,
    )
    _events_on = True


# --- Python < 3.12: a C profile function, or sys.settrace --------------------------------

# The trace function sees each resumption of a generator or coroutine as a
# "call" and each suspension as a "return"; only the first and the last are kept.
_RESUMABLE = (
    inspect.CO_GENERATOR
    | inspect.CO_COROUTINE
    | inspect.CO_ASYNC_GENERATOR
    | inspect.CO_ITERABLE_COROUTINE
)
_YIELD_OPS = frozenset(
    dis.opmap[name] for name in ("YIELD_VALUE", "YIELD_FROM") if name in dis.opmap
)


def _at_yield(frame: FrameType) -> bool:
    try:
        return frame.f_code.co_code[frame.f_lasti] in _YIELD_OPS
    except (IndexError, TypeError):
        return False


def _profile_call(tracker: CallTracker, frame: FrameType) -> None:
    if frame.f_code.co_flags & _RESUMABLE and tracker.on_resume(frame):
        tracker.resumed_at[frame] = frame.f_lasti
        return
    tracker.on_call(frame)


def _profile_return(tracker: CallTracker, frame: FrameType, value: Any) -> None:
    if frame.f_code.co_flags & _RESUMABLE:
        resumed_at = tracker.resumed_at.pop(frame, None)
        # Leaving at the yield it was resumed at means throw()/close() ended it.
        if _at_yield(frame) and resumed_at != frame.f_lasti:
            tracker.on_suspend(frame)
            return
    tracker.on_return(frame, value)


def _trace(frame: FrameType, event: str, arg: Any) -> Any:
    """The global trace function: called at each Python call ("call" only).
    Returns the local trace function for project code, None otherwise (the
    frame is then not traced at all)."""
    code = frame.f_code
    decision = _project_code.get(code)
    if decision is False:
        return None
    tracker = _tracker()
    if tracker is None or tracker.recorder.mode is not None:
        return None
    try:
        if decision is None and not is_project_code(
            code, frame.f_globals.get("__name__", ""), tracker.config
        ):
            return None
        frame.f_trace_lines = False
        _profile_call(tracker, frame)
    except Exception:
        tracker.fail()
        return None
    return _trace_frame


def _trace_frame(frame: FrameType, event: str, arg: Any) -> Any:
    """The local trace function of a project frame: only its return matters
    (an exception leaving the frame also ends in a "return", with None)."""
    if event == "return":
        tracker = _tracker()
        if tracker is not None and tracker.recorder.mode is None:
            try:
                _profile_return(tracker, frame, arg)
            except Exception:
                tracker.fail()
    return _trace_frame


def _c_decide(frame: FrameType) -> bool | None:
    """The C profile function's question for a code object it has not seen:
    None while no request is recorded (it asks again later)."""
    tracker = _tracker()
    if tracker is None:
        return None
    try:
        return is_project_code(frame.f_code, frame.f_globals.get("__name__", ""), tracker.config)
    except Exception:
        tracker.fail()
        return None


def _c_call(frame: FrameType) -> None:
    # _tracker() inlined, and _profile_call() but for generators and
    # coroutines: this runs for every project call.
    recorder = _current_get()
    if recorder is None or recorder.mode is not None:
        return
    tracker = recorder.calls
    if tracker is None or tracker.failed:
        return
    try:
        if frame.f_code.co_flags & _RESUMABLE:
            _profile_call(tracker, frame)
        else:
            tracker.on_call(frame)
    except Exception:
        tracker.fail()


def _c_return(frame: FrameType, value: Any) -> None:
    recorder = _current_get()
    if recorder is None or recorder.mode is not None:
        return
    tracker = recorder.calls
    if tracker is None or tracker.failed:
        return
    try:
        if frame.f_code.co_flags & _RESUMABLE:
            _profile_return(tracker, frame, value)
        else:
            tracker.on_return(frame, value)
    except Exception:
        tracker.fail()


def _c_suspend(frame: FrameType) -> None:
    tracker = _tracker()
    if tracker is None or tracker.recorder.mode is not None:
        return
    try:
        tracker.on_suspend(frame)
    except Exception:
        tracker.fail()


if _speedups is not None:
    _speedups.configure(_c_decide, _c_call, _c_return, _c_suspend)
    # The recorder's own work runs with this thread's profile function paused.
    from . import recorder as _recorder_module

    _recorder_module.pause_calls = _speedups.pause
    _recorder_module.resume_calls = _speedups.resume


def _thread_capture_on() -> bool:
    """Switch call capture on in this thread; False when another tool's
    profile (or, without the C module, trace) function is there."""
    if _speedups is not None:
        if _speedups.active():
            return True
        if sys.getprofile() is not None:
            return False  # cProfile, pyinstrument...: leave it be
        _speedups.start()
        return True
    current_trace = sys.gettrace()
    if current_trace is _trace:
        return True
    if current_trace is not None:
        return False  # a debugger, coverage: leave it be
    sys.settrace(_trace)
    return True


def _thread_capture_off() -> None:
    if _speedups is not None:
        if _speedups.active():
            _speedups.stop()
    elif sys.gettrace() is _trace:
        sys.settrace(None)


# Recorders capturing calls, per thread: concurrent async requests share the
# event loop's thread, and the first to finish must not switch it off for the rest.
_profile_users: dict[int, int] = {}


def start(recorder: Recorder) -> Any:
    """Begin capturing calls for this recorder; returns a token for stop()."""
    recorder.calls = CallTracker(recorder)
    if MONITORING:
        if not _events_on:
            with _lock:
                if not _events_on:
                    _monitoring_start()
        return None
    thread = threading.get_ident()
    with _lock:
        if not _thread_capture_on():
            return False
        _profile_users[thread] = _profile_users.get(thread, 0) + 1
    return True


def _profiled_child(child: Any) -> Any:
    """Run ``child`` (sync code of a recorded request, in a ``sync_to_async``
    worker thread, inside the request's context) with the trace function on:
    it is per thread before Python 3.12, and the middleware set it in the
    event loop's thread only."""
    tracker = _tracker()
    if tracker is None or (sys.getprofile() if _speedups is not None else sys.gettrace()):
        return child()
    _thread_capture_on()
    try:
        return child()
    finally:
        _thread_capture_off()


def install_sync_to_async() -> None:
    """Python < 3.12: capture calls of sync views run by the ASGI handler."""
    if MONITORING:
        return
    from asgiref.sync import SyncToAsync

    original = SyncToAsync.thread_handler
    if getattr(original, "_kolo_django", False):
        return

    def thread_handler(
        self: Any, loop: Any, exc_info: Any, task_context: Any, func: Any, *args: Any, **kwargs: Any
    ) -> Any:
        # asgiref calls func(child), func entering the request's context.
        if len(args) == 1 and not kwargs and callable(args[0]):
            args = (functools.partial(_profiled_child, args[0]),)
        return original(self, loop, exc_info, task_context, func, *args, **kwargs)

    thread_handler._kolo_django = True  # type: ignore[attr-defined]
    SyncToAsync.thread_handler = thread_handler  # type: ignore[method-assign]


def stop(recorder: Recorder, token: Any) -> None:
    if MONITORING:
        return  # the events stay on: see _monitoring_start
    if not token:
        return
    thread = threading.get_ident()
    with _lock:
        users = _profile_users.get(thread, 0) - 1
        if users > 0:
            _profile_users[thread] = users
            return
        _profile_users.pop(thread, None)
        _thread_capture_off()
