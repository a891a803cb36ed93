"""Section 2: requests per second under a real threaded server.

Each round starts one server process per configuration in turn (absent,
off, gen, full[, kolo]) on the same SQLite file, warms it up, then sends
the requests of each view from concurrent client threads (one
``requests.Session`` each). A figure is the median over rounds of the
configuration's requests/s divided by the same round's ``absent`` figure.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

from .common import VIEW_LABELS, VIEWS, Environment, Table, median, ratio_text
from .configs import CONFIGS

WARMUP = 10
START_TIMEOUT = 60


class ServerProcess:
    def __init__(self, env: Environment, config: str) -> None:
        self.config = config
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.serve"],
            env=env.env(config),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=str(env.dir),
        )
        self.port = self._wait_ready()
        self.base = f"http://127.0.0.1:{self.port}"

    def _wait_ready(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            if line.startswith("READY "):
                return int(line.split()[1])
        self.proc.kill()
        _out, err = self.proc.communicate(timeout=10)
        raise RuntimeError(f"server ({self.config}) did not start:\n{err[-2000:]}")

    def stop(self) -> int:
        """Stops the server; the number of traces it stored (-1 when unknown)."""
        self.proc.terminate()
        try:
            out, _err = self.proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            return -1
        for line in out.splitlines():
            if line.startswith("SAVES "):
                return int(line.split()[1])
        return -1


def kolo_trace_files(env: Environment) -> int:
    """Kolo writes one raw file a trace under .kolo/.internal/raw/."""
    return sum(1 for _ in (env.dir / ".kolo" / ".internal" / "raw").glob("*.kolo"))


def hammer(url: str, requests_total: int, threads: int) -> tuple[float, int]:
    """Requests per second for ``requests_total`` GETs from ``threads`` threads,
    and how many answered other than 200."""
    import requests

    share = [
        requests_total // threads + (1 if i < requests_total % threads else 0)
        for i in range(threads)
    ]
    errors = [0] * threads
    barrier = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        with requests.Session() as session:
            barrier.wait()
            for _ in range(share[index]):
                try:
                    if session.get(url, timeout=60).status_code != 200:
                        errors[index] += 1
                except requests.RequestException:
                    errors[index] += 1

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    started = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    return requests_total / elapsed, sum(errors)


def warm(url: str, count: int) -> None:
    import requests

    with requests.Session() as session:
        for _ in range(count):
            session.get(url, timeout=60)


def run(
    env: Environment,
    *,
    rounds: int,
    requests: int,
    threads: int,
    configs: list[str],
    views: list[str],
    warmup: int = WARMUP,
) -> dict[str, Any]:
    rps: dict[str, dict[str, list[float]]] = {v: {c: [] for c in configs} for v in views}
    errors: dict[str, int] = {c: 0 for c in configs}
    stored: dict[str, list[int]] = {c: [] for c in configs}
    for round_index in range(rounds):
        for config in configs:
            kolo_before = kolo_trace_files(env)
            server = ServerProcess(env, config)
            try:
                for view in views:
                    url = server.base + VIEWS[view]
                    warm(url, warmup)
                    value, failed = hammer(url, requests, threads)
                    rps[view][config].append(value)
                    errors[config] += failed
            finally:
                saved = server.stop()
            if config == "kolo":
                saved = kolo_trace_files(env) - kolo_before
            stored[config].append(saved)
        print(f"  section 2: round {round_index + 1}/{rounds} done", flush=True)
    expected = len(views) * (requests + warmup)
    results: dict[str, Any] = {
        "rounds": rounds,
        "requests": requests,
        "threads": threads,
        "errors": errors,
        "traces_stored_per_round": stored,
        "traces_expected_per_round": expected,
        "views": {},
    }
    for view in views:
        per_config = {}
        for config in configs:
            ratios = [
                r / base for r, base in zip(rps[view][config], rps[view]["absent"], strict=True)
            ]
            per_config[config] = {
                "rps": rps[view][config],
                "median_rps": median(rps[view][config]),
                "ratios": ratios,
                "ratio": median(ratios),
            }
        results["views"][view] = per_config
    return results


def table(results: dict[str, Any]) -> Table:
    t = Table(
        f"2. Threaded server (Django's ThreadedWSGIServer in a subprocess), "
        f"{results['threads']} client threads, {results['requests']} requests × "
        f"{results['rounds']} rounds; requests/s, median over rounds",
        [
            "view",
            "configuration",
            "req/s",
            "throughput vs absent",
            "slowdown",
            "errors",
            "traces stored",
        ],
    )
    expected = results["traces_expected_per_round"]
    for view, per_config in results["views"].items():
        for config, figures in per_config.items():
            slowdowns = [1 / r for r in figures["ratios"] if r]
            stored = results["traces_stored_per_round"][config]
            stored_text = ""
            if config in ("gen", "full", "kolo"):
                stored_text = f"{min(stored)}/{expected} per round"
            t.add(
                VIEW_LABELS[view],
                CONFIGS[config],
                f"{figures['median_rps']:.1f}",
                "1.00" if config == "absent" else ratio_text(figures["ratios"]),
                "" if config == "absent" else ratio_text(slowdowns),
                results["errors"][config],
                stored_text,
            )
    return t
