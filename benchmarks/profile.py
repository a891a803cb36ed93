"""Where the recording time goes: run one view repeatedly under one
configuration, optionally under cProfile, and summarise by kolo_django
function (file:line).

    python -m benchmarks.profile --config gen --requests 300 --cprofile
    py-spy record -r 400 -f raw -o /tmp/full.txt -- python -m benchmarks.profile --config full
    python -m benchmarks.profile --summarise /tmp/full.txt

Python 3.11: cProfile (like pyinstrument) installs a profile function, and
kolo_django's call capture then stands aside for it, so full capture must be
profiled with a sampling profiler (py-spy) there. On 3.12 cProfile uses
sys.monitoring and both run together.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import sys
import time
from collections import Counter
from pathlib import Path

from .common import VIEWS, Environment, quiet, test_client
from .configs import kolo_settings, middleware_for
from .stub import StubServer

OWN = ("kolo_django", "benchmarks")


def loop(config: str, path: str, requests: int, profiler: cProfile.Profile | None) -> float:
    from django.conf import settings
    from django.test import override_settings

    with override_settings(
        MIDDLEWARE=middleware_for(config, settings.BASE_MIDDLEWARE),
        KOLO_DJANGO=kolo_settings(config),
    ):
        client = test_client()
        with quiet():
            for _ in range(10):
                client.get(path)
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        for _ in range(requests):
            client.get(path)
        from kolo_django import storage

        storage.flush(timeout=120)
        if profiler is not None:
            profiler.disable()
        return time.perf_counter() - started


def short(filename: str) -> str:
    for marker in ("/kolo_django/", "/site-packages/", "/lib/python3"):
        index = filename.find(marker)
        if index >= 0:
            return filename[index + 1 :]
    return filename


def print_cprofile(profiler: cProfile.Profile, total: float, top: int) -> None:
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_cc, nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tt, ct, nc, f"{short(filename)}:{line}", name))
    print(f"wall time {total:.2f} s (profiled); top {top} by own time:")
    for tt, ct, nc, where, name in sorted(rows, reverse=True)[:top]:
        print(f"  {tt / total:6.1%} own {ct / total:6.1%} incl {nc:>8} calls  {where} {name}")
    print(f"\ntop {top} kolo_django functions by inclusive time:")
    own = [r for r in rows if r[3].startswith("kolo_django/")]
    for tt, ct, nc, where, name in sorted(own, key=lambda r: r[1], reverse=True)[:top]:
        print(f"  {ct / total:6.1%} incl {tt / total:6.1%} own {nc:>8} calls  {where} {name}")


# py-spy --format raw: "frame;frame;... count", a frame being "name (file:line)".
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def summarise_raw(path: Path, top: int) -> None:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    own_lines: Counter[str] = Counter()
    total = 0
    for raw in path.read_text().splitlines():
        stack, _, count_text = raw.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        seen = set()
        leaf_kolo = leaf_line = None
        for frame in frames:
            match = _FRAME.match(frame)
            if match is None:
                continue
            where = short(match["file"])
            if where.startswith("kolo_django/"):
                key = f"{where} {match['name']}"
                # The function only, so one entry however many lines sampled.
                if key not in seen:
                    inclusive[key] += count
                    seen.add(key)
                leaf_kolo = key
                leaf_line = f"{where}:{match['line']} {match['name']}"
        if leaf_kolo is not None and leaf_line is not None:
            # Own time of the innermost kolo_django frame: itself plus the
            # library code it called.
            own[leaf_kolo] += count
            own_lines[leaf_line] += count
    if not total:
        print("no samples")
        return
    in_kolo = sum(own.values())
    print(f"{total} samples; {in_kolo / total:.1%} under kolo_django frames")
    print(f"top {top} kolo_django functions by inclusive samples:")
    for key, count in inclusive.most_common(top):
        print(f"  {count / total:6.1%}  {key}")
    print(f"top {top} innermost kolo_django frames (own + the library code they call):")
    for key, count in own.most_common(top):
        print(f"  {count / total:6.1%}  {key}")
    print(f"top {top} lines of those frames:")
    for key, count in own_lines.most_common(top):
        print(f"  {count / total:6.1%}  {key}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile")
    parser.add_argument("--config", default="full", choices=["off", "gen", "full", "kolo"])
    parser.add_argument("--view", default="list", choices=sorted(VIEWS))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--cprofile", action="store_true", help="profile with cProfile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--summarise", metavar="RAW", help="summarise py-spy raw output and exit")
    args = parser.parse_args(argv)
    if args.summarise:
        summarise_raw(Path(args.summarise), args.top)
        return 0
    env = Environment()
    try:
        with StubServer() as stub:
            env.setup_django(stub.url)
            profiler = cProfile.Profile() if args.cprofile else None
            total = loop(args.config, VIEWS[args.view], args.requests, profiler)
            print(
                f"{args.view} under {args.config}: {total / args.requests * 1000:.2f} ms/request "
                f"({args.requests} requests{', cProfile on' if profiler else ''})"
            )
            if profiler is not None:
                print_cprofile(profiler, total, args.top)
    finally:
        env.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
