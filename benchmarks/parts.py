"""Where the recording time goes: one view under variants that each leave out
a part, measured side by side as in section 1 (each round starts one variant
later; a figure is the median over rounds of the round's time over the same
round's ``off`` time), with what the storage writer did in each batch.

    python -m benchmarks.parts --view list --rounds 5 --requests 200
    python -m benchmarks.parts --per-call 2000

Variants:

- ``off``, ``gen``, ``full``: as in section 1;
- ``full-idle``: full capture with the call callbacks running (each code
  object decided, the request's tracker found) but recording nothing: what
  their dispatch alone costs;
- ``full-nolocals``: calls recorded without their locals (``CAPTURE_LOCALS``
  off);
- ``gen-nobacking``: gen level without the backing reads and M2M link rows
  (``MAX_BACKING_ROWS`` 0);
- ``gen-noinsert``: gen level with the writer's insert and commit replaced by
  nothing (the trace is still built, serialised and compressed);
- ``gen-linger-0.1``: gen level with the writer writing each batch 0.1 s
  after its first trace, however many keep coming (the writer before
  eed19a3).

``--sql-time`` adds the time the serving thread spent in the database's
``execute()`` a request, and how many of its statements took over 1 ms: a
commit of the storage writer holds SQLite's reads back while it syncs.

``--per-call N`` times ``benchmarks.views.title_words`` on a title of N
words, N calls of ``normalise`` below one recorded call: without a recorder,
recorded without locals, and recorded with them (best of 7).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from .client import WARMUP
from .common import VIEWS, Environment, Table, median, ratio_text
from .stub import StubServer

# variant -> (configuration, KOLO_DJANGO settings added to it)
_SETTINGS: dict[str, tuple[str, dict[str, Any]]] = {
    "off": ("off", {}),
    "gen": ("gen", {}),
    "gen-nobacking": ("gen", {"MAX_BACKING_ROWS": 0}),
    "gen-noinsert": ("gen", {}),
    "gen-linger-0.1": ("gen", {}),
    "full-idle": ("full", {}),
    "full-nolocals": ("full", {"CAPTURE_LOCALS": False}),
    "full": ("full", {}),
}
VARIANTS = tuple(_SETTINGS)


def variant_settings(variant: str) -> tuple[str, dict[str, Any]]:
    """The configuration a variant runs, and the KOLO_DJANGO settings it adds."""
    return _SETTINGS[variant]


WRITER = "kolo_django-writer"


@contextlib.contextmanager
def _patched(target: Any, values: dict[str, Any]) -> Iterator[None]:
    saved = {name: getattr(target, name) for name in values}
    for name, value in values.items():
        setattr(target, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(target, name, value)


def variant_patches(variant: str) -> contextlib.AbstractContextManager[None]:
    from kolo_django import storage
    from kolo_django.recording.frames import CallTracker

    patches: dict[str, tuple[Any, dict[str, Any]]] = {
        "gen-noinsert": (storage, {"insert_rows": lambda rows: None}),
        "gen-linger-0.1": (storage, {"LINGER": 0.1, "MAX_LINGER": 0.1}),
        # The callbacks still decide each code object and find the request's
        # tracker; its methods then record nothing.
        "full-idle": (
            CallTracker,
            {
                "on_call": lambda self, frame: None,
                "on_return": lambda self, frame, value, exception=None: None,
                "on_suspend": lambda self, frame: None,
                "on_resume": lambda self, frame: False,
            },
        ),
    }
    target, values = patches.get(variant, (None, {}))
    return _patched(target, values)


class WriterCounts:
    """Batches the storage writer inserted, and connections its thread opened."""

    def __init__(self) -> None:
        self.batches = 0
        self.connections = 0

    def install(self) -> None:
        from django.db.backends.base.base import BaseDatabaseWrapper

        from kolo_django import storage

        insert_rows = storage.insert_rows
        connect = BaseDatabaseWrapper.connect
        counts = self

        def counted_insert(rows: list[Any]) -> None:
            if threading.current_thread().name == WRITER:
                counts.batches += 1
            insert_rows(rows)

        def counted_connect(wrapper: Any) -> None:
            if threading.current_thread().name == WRITER:
                counts.connections += 1
            connect(wrapper)

        storage.insert_rows = counted_insert
        BaseDatabaseWrapper.connect = counted_connect  # type: ignore[method-assign]

    def snapshot(self) -> tuple[int, int]:
        return self.batches, self.connections


class SqlTime:
    """Time the main thread (the test Client's, which serves the requests)
    spends in ``execute()``, and its statements slower than ``SLOW`` seconds."""

    SLOW = 0.001

    def __init__(self) -> None:
        self.seconds = 0.0
        self.slow = 0

    def install(self) -> None:
        from django.db.backends.utils import CursorWrapper

        main = threading.main_thread()
        totals = self

        def timed(original: Any) -> Any:
            def wrapper(cursor: Any, *args: Any) -> Any:
                if threading.current_thread() is not main:
                    return original(cursor, *args)
                started = time.perf_counter()
                try:
                    return original(cursor, *args)
                finally:
                    spent = time.perf_counter() - started
                    totals.seconds += spent
                    totals.slow += spent > totals.SLOW

            return wrapper

        CursorWrapper._execute = timed(CursorWrapper._execute)  # type: ignore[method-assign]
        CursorWrapper._executemany = timed(CursorWrapper._executemany)  # type: ignore[method-assign]

    def snapshot(self) -> tuple[float, int]:
        return self.seconds, self.slow


def run(
    view: str, rounds: int, requests: int, variants: list[str], sql_time: bool = False
) -> Table:
    from .client import run_batch

    counts = WriterCounts()
    counts.install()
    sql = SqlTime()
    if sql_time:
        sql.install()
    spent: dict[str, list[tuple[float, int]]] = {v: [] for v in variants}
    times: dict[str, list[float]] = {v: [] for v in variants}
    writer: dict[str, list[tuple[int, int]]] = {v: [] for v in variants}
    for round_index in range(rounds):
        shift = round_index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            config, extra = variant_settings(variant)
            before = counts.snapshot()
            with variant_patches(variant):
                sql_before = sql.snapshot()
                elapsed, _phases = run_batch(config, VIEWS[view], requests, extra=extra)
                sql_after = sql.snapshot()
            after = counts.snapshot()
            # The warm-up requests are in these figures too: a share a request.
            spent[variant].append((sql_after[0] - sql_before[0], sql_after[1] - sql_before[1]))
            times[variant].append(elapsed)
            writer[variant].append((after[0] - before[0], after[1] - before[1]))
        print(f"  round {round_index + 1}/{rounds} done", flush=True)
    columns = ["variant", "ms/request", "× off", "writer batches", "writer connections"]
    if sql_time:
        columns += ["SQL ms/request", "SQL > 1 ms"]
    table = Table(
        f"Variants of {view}, {requests} requests × {rounds} rounds (median over rounds, "
        "min–max in brackets); the writer's batches and new connections a round"
        + (
            "; the serving thread's time in execute() a request (warm-up included) and its "
            "statements over 1 ms a round"
            if sql_time
            else ""
        ),
        columns,
    )
    for variant in variants:
        ratios = [t / off for t, off in zip(times[variant], times["off"], strict=True)]
        batches = [b for b, _c in writer[variant]]
        connections = [c for _b, c in writer[variant]]
        cells = [
            variant,
            f"{median(times[variant]) / requests * 1000:.2f}",
            "1.00" if variant == "off" else ratio_text(ratios),
            f"{median(batches):.0f}",
            f"{median(connections):.0f}",
        ]
        if sql_time:
            made = requests + WARMUP
            cells += [
                f"{median([t for t, _n in spent[variant]]) / made * 1000:.2f}",
                f"{median([n for _t, n in spent[variant]]):.0f}",
            ]
        table.add(*cells)
    return table


def per_call(calls: int, repeats: int = 7) -> Table:
    from django.test import override_settings

    from kolo_django.conf import get_config
    from kolo_django.recording import frames
    from kolo_django.recording.recorder import Recorder, activate

    from . import views
    from .configs import kolo_settings

    title = " ".join(["#Word"] * calls)

    def loop() -> None:
        views.title_words(title)

    def best(capture_locals: bool | None) -> float:
        fastest = float("inf")
        for _ in range(repeats):
            if capture_locals is None:
                started = time.perf_counter()
                loop()
                fastest = min(fastest, time.perf_counter() - started)
                continue
            settings = kolo_settings(
                "full", CAPTURE_LOCALS=capture_locals, MAX_EVENTS=2 * calls + 10
            )
            with override_settings(KOLO_DJANGO=settings):
                recorder = Recorder(get_config())
                with activate(recorder):
                    token = frames.start(recorder)
                    try:
                        started = time.perf_counter()
                        loop()
                        fastest = min(fastest, time.perf_counter() - started)
                    finally:
                        frames.stop(recorder, token)
                        recorder.calls = None
                if len(recorder.events) != 2 * (calls + 1):
                    raise RuntimeError(f"{len(recorder.events)} events for {calls + 1} calls")
        return fastest / calls * 1e6

    plain = best(None)
    table = Table(
        f"{calls} calls of benchmarks.views.normalise, from title_words "
        f"(best of {repeats}), µs a call",
        ["recording", "µs a call", "added"],
    )
    table.add("none", f"{plain:.2f}", "")
    for label, capture_locals in (("calls, no locals", False), ("calls with locals", True)):
        value = best(capture_locals)
        table.add(label, f"{value:.2f}", f"+{value - plain:.2f}")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.parts")
    parser.add_argument("--view", default="list", choices=sorted(VIEWS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma-separated, 'off' first (default: {','.join(VARIANTS)})",
    )
    parser.add_argument(
        "--sql-time",
        action="store_true",
        help="also time the serving thread's execute() calls",
    )
    parser.add_argument("--per-call", type=int, metavar="N", help="time N calls instead")
    args = parser.parse_args(argv)
    for name in ("rounds", "requests", "per_call"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in _SETTINGS]
    if unknown or not variants or variants[0] != "off":
        parser.error(f"variants are {', '.join(VARIANTS)}, 'off' first")
    env = Environment()
    try:
        with StubServer() as stub:
            env.setup_django(stub.url)
            print(f"Python {sys.version.split()[0]}", flush=True)
            if args.per_call is not None:
                per_call(args.per_call).print()
            else:
                run(args.view, args.rounds, args.requests, variants, args.sql_time).print()
    finally:
        env.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
