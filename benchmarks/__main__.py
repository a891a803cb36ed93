"""``python -m benchmarks``: kolo_django's recording overhead, trace sizes,
generation time and admin time, as ratios measured within one run.

See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from typing import Any

SECTIONS = ["client", "server", "size", "generation", "admin"]
ALIASES = {str(i + 1): name for i, name in enumerate(SECTIONS)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per batch (default 300)"
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="client threads against the server (default 4)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run of a few seconds (no target verdicts)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="SECTION",
        help=f"run only these sections (repeatable or comma-separated): {', '.join(SECTIONS)} "
        "or 1-5",
    )
    parser.add_argument("--no-kolo", action="store_true", help="leave Kolo out even if installed")
    parser.add_argument("--json", metavar="PATH", help="also write every raw figure as JSON")
    parser.add_argument(
        "--db-dir",
        metavar="DIR",
        help="where the throwaway SQLite file goes (default: the system temp dir); "
        "/dev/shm takes the disk's fsync out of the figures",
    )
    args = parser.parse_args(argv)
    chosen: list[str] = []
    for item in args.only or []:
        for name in item.split(","):
            name = ALIASES.get(name.strip(), name.strip())
            if name not in SECTIONS:
                parser.error(f"unknown section {name!r}; choose from {', '.join(SECTIONS)}")
            chosen.append(name)
    args.sections = [s for s in SECTIONS if s in chosen] if chosen else list(SECTIONS)
    if args.quick:
        args.rounds = 1
        args.requests = 5
    if args.rounds < 1 or args.requests < 1 or args.threads < 1:
        parser.error("--rounds, --requests and --threads must be at least 1")
    return args


def machine(env: Any) -> dict[str, Any]:
    import subprocess

    import django

    from .common import commit_latency_ms, repo_root
    from .configs import kolo_version

    return {
        "date": dt.date.today().isoformat(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "kolo": kolo_version(),
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=repo_root(),
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "?",
        "db_dir": str(env.dir),
        "sqlite_commit_ms": commit_latency_ms(env.dir),
        "load_average_at_start": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    from . import common
    from .common import VIEWS, Environment, Table
    from .configs import kolo_available
    from .stub import StubServer

    python = sys.version_info[:2]
    common.SMOKE = args.quick
    warmup = 2 if args.quick else 10
    env = Environment(args.db_dir)
    results: dict[str, Any] = {"args": {k: v for k, v in vars(args).items()}}
    summary: list[tuple[str, str, bool | None]] = []
    try:
        with StubServer() as stub:
            env.setup_django(stub.url)
            info = machine(env)
            results["machine"] = info
            with_kolo = kolo_available() and not args.no_kolo
            print(
                f"kolo_django benchmarks — {info['date']}, Python {info['python']}, "
                f"Django {info['django']}, {info['cpus']} CPUs, {info['platform']}; "
                f"Kolo: {info['kolo'] + ' (compared)' if with_kolo else 'not installed'}"
                + (" (--no-kolo)" if info["kolo"] and args.no_kolo else ""),
                flush=True,
            )
            print(
                f"kolo_django at {info['commit']}; SQLite file in {info['db_dir']}, "
                f"where one insert + commit takes {info['sqlite_commit_ms']:.2f} ms; "
                f"load average {info['load_average_at_start']:.2f}",
                flush=True,
            )
            print(flush=True)
            views = list(VIEWS)

            if "client" in args.sections:
                from . import client

                configs = ["off", "gen", "full"] + (["kolo"] if with_kolo else [])
                res = client.run(
                    rounds=args.rounds,
                    requests=args.requests,
                    configs=configs,
                    views=views,
                    warmup=warmup,
                )
                results["client"] = res
                client.table(res, python).print()
                summary += client.targets(res, python)

            if "server" in args.sections:
                from . import server

                configs = ["absent", "gen", "full"]
                if not args.quick:
                    configs.insert(1, "off")
                    configs += ["kolo"] if with_kolo else []
                res = server.run(
                    env,
                    rounds=args.rounds,
                    requests=args.requests,
                    threads=args.threads,
                    configs=configs,
                    views=views,
                    warmup=warmup,
                )
                results["server"] = res
                server.table(res).print()

            if "size" in args.sections:
                from . import traces

                res = traces.run_sizes(views)
                results["size"] = res
                traces.sizes_table(res).print()
                list_full = res["list/full"]["stored_bytes"]
                summary.append(
                    ("list-view trace ≤ 6 KB (full)", f"{list_full:,} B", list_full <= 6144)
                )

            if "generation" in args.sections:
                from . import traces

                sizes = [50, 200] if args.quick else [100, 500, 1000, 2000, 5000]
                res = traces.run_generation(sizes, repeats=2 if args.quick else 3)
                results["generation"] = res
                for t in traces.generation_tables(res):
                    t.print()
                heavy = res["heavy"]
                worst = max(heavy["first_seconds"], heavy["median_seconds"])
                summary.append(
                    (
                        "generation of heavy trace ≤ 0.5 s",
                        f"{heavy['first_seconds']:.3f} s first, {heavy['median_seconds']:.3f} s next",
                        worst <= 0.5,
                    )
                )
                spread = traces.linearity(res)
                largest = res["scaling"][-1]
                summary.append(
                    (
                        "linear growth (µs/query at the largest N / median at 500 ≤ N < largest)",
                        f"{spread:.2f}" if spread else "-",
                        None if spread is None or args.quick else spread <= 1.5,
                    )
                )
                if largest["queries"] >= 5000:
                    summary.append(
                        (
                            "5,000 queries ≤ 5 s",
                            f"{largest['median_seconds']:.2f} s",
                            largest["median_seconds"] <= 5,
                        )
                    )

            if "admin" in args.sections:
                from . import admin

                if admin.available():
                    res = admin.run(
                        traces=200 if args.quick else 10_000,
                        detail_events=400 if args.quick else 5000,
                        repeats=2 if args.quick else 10,
                    )
                    results["admin"] = res
                    admin.table(res).print()
                    ms = res["changelist"]["median_ms"]
                    summary.append(
                        (
                            f"changelist with {res['traces']:,} traces ≤ 200 ms",
                            f"{ms:.1f} ms",
                            None if args.quick else ms <= 200,
                        )
                    )
                else:
                    results["admin"] = None
                    print("5. admin not available (kolo_django.admin does not register Trace)")
                    print(flush=True)

        if summary:
            t = Table(
                "Targets"
                + (" (--quick: a smoke run, figures are not meaningful)" if args.quick else ""),
                ["target", "measured", "verdict"],
            )
            for name, measured, ok in summary:
                t.add(name, measured, common.verdict(ok))
            t.print()
        results["summary"] = [
            {"target": n, "measured": m, "met": None if args.quick else ok} for n, m, ok in summary
        ]
        results["load_average_at_end"] = os.getloadavg()[0]
        print(
            f"done in {time.perf_counter() - started:.1f} s; "
            f"load average {results['load_average_at_end']:.2f}"
        )
    finally:
        env.cleanup()
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
