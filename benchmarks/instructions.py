"""``python -m benchmarks.instructions``: the instructions a request executes,
counted by valgrind's callgrind, for each view and configuration.

The timed sections vary by up to a third between runs on these machines, so
a change of one or two percent cannot be seen there. Instruction counts
repeat to within about 0.1 % for the same code, inputs and Python, whatever
else the machine does (the trace ids, the timestamps and the writer thread's
timing still vary): run this on two commits and compare. They are not the
wall-clock ratios of section 1 (the issue's targets): cache misses and
memory stalls are not counted, nor the storage writer's thread (its inserts
and commits), only the thread that serves the requests.

    python -m benchmarks.instructions --views list,heavy --configs off,gen,full

A variant of ``python -m benchmarks.parts`` counts as a configuration too:
``--configs off,gen,full-idle,full-nolocals,full`` splits full capture's cost.

Each view and configuration runs in a process of its own under valgrind
(about fifty times slower than without), ``--jobs`` at a time: Django is set
up and the view requested ``--warmup`` times before counting starts, then
``--requests`` requests (and the wait for the writer) are counted, inside a
call of ``sys.call_tracing``, which nothing else calls and which callgrind
is told to count within.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import VIEW_LABELS, VIEWS, Table, repo_root

CONFIGS = ("off", "gen", "full", "kolo")


def known_configs() -> tuple[str, ...]:
    """The configurations, and the variants of ``benchmarks.parts`` (which
    split a configuration's cost: ``full-idle``, ``full-nolocals``...)."""
    from .parts import VARIANTS

    return CONFIGS + tuple(v for v in VARIANTS if v not in CONFIGS)


# The C function of sys.call_tracing in CPython: counting happens inside it.
MARKER = "sys_call_tracing"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions",
        description="Instructions per request under valgrind's callgrind.",
    )
    parser.add_argument(
        "--views", default="list,heavy", help="comma-separated (default: %(default)s)"
    )
    parser.add_argument(
        "--configs",
        default="off,gen,full",
        help="comma-separated, 'off' first (default: %(default)s)",
    )
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--child", nargs=2, metavar=("VIEW", "CONFIG"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.views = [v for v in args.views.split(",") if v]
    args.configs = [c for c in args.configs.split(",") if c]
    if args.child is None:
        configs = known_configs()
        unknown = sorted(set(args.views) - set(VIEWS)) + sorted(set(args.configs) - set(configs))
        if unknown:
            parser.error(
                f"unknown: {', '.join(unknown)} (views: {', '.join(VIEWS)}; configurations: {', '.join(configs)})"
            )
        if not args.configs or args.configs[0] != "off":
            parser.error("the configurations start with 'off', the baseline")
    if args.requests < 1 or args.warmup < 0 or args.jobs < 1:
        parser.error("--requests and --jobs are at least 1, --warmup at least 0")
    return args


def child(view: str, config: str, requests: int, warmup: int) -> None:
    """Set up, warm up, then make the counted requests."""
    from .common import Environment, quiet, test_client
    from .configs import kolo_settings, middleware_for
    from .parts import variant_patches, variant_settings
    from .stub import StubServer

    variant = config
    config, extra = (variant, {}) if variant == "kolo" else variant_settings(variant)

    env = Environment()
    try:
        with StubServer() as stub:
            env.setup_django(stub.url)
            from django.conf import settings
            from django.test import override_settings

            from kolo_django import storage

            with (
                override_settings(
                    MIDDLEWARE=middleware_for(config, settings.BASE_MIDDLEWARE),
                    KOLO_DJANGO=kolo_settings(config, **extra),
                ),
                variant_patches(variant),
            ):
                client = test_client()
                path = VIEWS[view]
                with quiet():
                    for _ in range(warmup):
                        client.get(path)
                    storage.flush(timeout=120)

                    def counted() -> None:
                        for _ in range(requests):
                            response = client.get(path)
                            if response.status_code != 200:
                                raise RuntimeError(f"{path} answered {response.status_code}")
                        storage.flush(timeout=120)

                    sys.call_tracing(counted, ())
    finally:
        env.tmp.cleanup()


def count(view: str, config: str, requests: int, warmup: int, workdir: Path) -> int:
    out = workdir / f"callgrind.{view}.{config}.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--collect-atstart=no",
        f"--toggle-collect={MARKER}",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "benchmarks.instructions",
        "--child",
        view,
        config,
        "--requests",
        str(requests),
        "--warmup",
        str(warmup),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(repo_root()), env.get("PYTHONPATH", "")) if p
    )
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=repo_root())
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(
            f"{view}/{config}: valgrind exited {done.returncode}: {' | '.join(tail)}"
        )
    collected = int(found.group(1))
    if collected == 0:
        raise RuntimeError(f"{view}/{config}: nothing was counted (no {MARKER} in this Python?)")
    return collected


def run(args: argparse.Namespace) -> dict[str, Any]:
    jobs = [(view, config) for view in args.views for config in args.configs]
    with tempfile.TemporaryDirectory(prefix="kolo-instructions-") as tmp:
        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            futures = {
                job: pool.submit(count, *job, args.requests, args.warmup, Path(tmp)) for job in jobs
            }
            return {f"{view}/{config}": futures[(view, config)].result() for view, config in jobs}


def table(results: dict[str, int], args: argparse.Namespace) -> Table:
    t = Table(
        f"Instructions per request (callgrind; {args.requests} requests after {args.warmup} "
        "unmeasured; the serving thread only)",
        ["view", "configuration", "instructions / request", "× off"],
    )
    for view in args.views:
        off = results[f"{view}/off"]
        for config in args.configs:
            total = results[f"{view}/{config}"]
            t.add(VIEW_LABELS[view], config, f"{total / args.requests:,.0f}", f"×{total / off:.3f}")
    return t


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child is not None:
        child(*args.child, args.requests, args.warmup)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    if "kolo" in args.configs:
        from .configs import kolo_available

        if not kolo_available():
            print("the kolo configuration needs 'pip install kolo==3.6.1'", file=sys.stderr)
            return 2
    print(
        f"Python {sys.version.split()[0]}; {len(args.views) * len(args.configs)} processes "
        f"under valgrind, {args.jobs} at a time",
        flush=True,
    )
    try:
        results = run(args)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    table(results, args).print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
