"""Shared pieces: the throwaway environment, timing helpers, tables."""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

LIST_PATH = "/todos/"
HEAVY_PATH = "/bench/heavy/"
VIEWS = {"list": LIST_PATH, "heavy": HEAVY_PATH}
VIEW_LABELS = {"list": "list /todos/ (50 rows)", "heavy": "heavy /bench/heavy/"}
SEED_TODOS = 60


class Environment:
    """A temporary directory holding the SQLite file and Kolo's .kolo folder,
    plus the environment variables a server subprocess needs."""

    def __init__(self, parent: str | None = None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="kolo-bench-", dir=parent)
        self.dir = Path(self.tmp.name)
        self.db = self.dir / "bench.sqlite3"
        self.api_url = ""

    def env(self, config: str = "off") -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "benchmarks.settings",
                "KOLO_BENCH_DB": str(self.db),
                "KOLO_BENCH_API_URL": self.api_url,
                "KOLO_BENCH_CONFIG": config,
                "KOLO_PATH": str(self.dir),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(repo_root()), env.get("PYTHONPATH", "")) if p
                ),
            }
        )
        return env

    def setup_django(self, api_url: str) -> None:
        self.api_url = api_url
        for key, value in self.env("off").items():
            if key.startswith(("KOLO_", "DJANGO_SETTINGS")):
                os.environ[key] = value
        self._write_kolo_config()
        import django

        django.setup()
        from django.core.management import call_command

        with quiet():
            call_command("migrate", verbosity=0, interactive=False)
            call_command("seed_example", todos=SEED_TODOS, verbosity=0)

    def _write_kolo_config(self) -> None:
        # Kolo records every frame outside site-packages: kolo_django's idle
        # hooks (an editable install) and the benchmark's own stub are not the
        # user's code, so Kolo is told to skip them.
        kolo_dir = self.dir / ".kolo"
        kolo_dir.mkdir(exist_ok=True)
        (kolo_dir / "config.toml").write_text(
            "hide_startup_message = true\n"
            "[filters]\n"
            'ignore_frames = ["/kolo_django/", "/benchmarks/stub.py"]\n'
        )

    def cleanup(self) -> None:
        with contextlib.suppress(OSError):
            self.tmp.cleanup()


def commit_latency_ms(directory: Path, commits: int = 20) -> float:
    """Median time of a small SQLite insert + commit in ``directory``: the
    fsync every stored trace pays, which varies a lot between disks."""
    import sqlite3
    import time

    path = directory / "commit-probe.sqlite3"
    connection = sqlite3.connect(path)
    try:
        connection.execute("CREATE TABLE probe (data BLOB)")
        connection.commit()
        times = []
        for _ in range(commits):
            started = time.perf_counter()
            connection.execute("INSERT INTO probe VALUES (?)", (os.urandom(8000),))
            connection.commit()
            times.append(time.perf_counter() - started)
    finally:
        connection.close()
        path.unlink()
    return median(times) * 1000


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow what Django commands and Kolo print."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def test_client() -> Any:
    """A Django test Client that keeps no earlier request alive.

    Under DEBUG (which Kolo's middleware needs) ``Signal.connect`` checks each
    receiver through ``django.utils.inspect``'s ``lru_cache(maxsize=512)``; the
    Client connects a new receiver per request, holding that request's template
    contexts, so the last 512 requests' pages stay in memory. The heap then
    grows by several hundred thousand objects, each full garbage collection
    takes hundreds of milliseconds, and every configuration's time depends on
    how many of them land in its batch. A real server connects no such
    receiver: the cache is emptied after each request, in every configuration.
    """
    from django.test import Client
    from django.utils import inspect as django_inspect

    cached = getattr(django_inspect, "_get_func_parameters", None)
    clear = getattr(cached, "cache_clear", None)

    class BenchClient(Client):
        def request(self, **request: Any) -> Any:
            try:
                return super().request(**request)
            finally:
                if clear is not None:
                    clear()

    return BenchClient()


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio_text(ratios: Sequence[float]) -> str:
    if not ratios:
        return "-"
    if len(ratios) == 1:
        return f"×{ratios[0]:.2f}"
    return f"×{median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"


# Set by --quick: a smoke run's figures are not held against the targets.
SMOKE = False


def verdict(ok: bool | None) -> str:
    if SMOKE:
        return "n/a"
    return {True: "met", False: "MISSED", None: "n/a"}[ok]


class Table:
    def __init__(self, title: str, headers: Sequence[str]) -> None:
        self.title = title
        self.headers = list(headers)
        self.rows: list[list[str]] = []

    def add(self, *cells: Any) -> None:
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        widths = [len(h) for h in self.headers]
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
        lines = [self.title]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        lines.append(fmt.format(*self.headers).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        for row in self.rows:
            lines.append(fmt.format(*row).rstrip())
        return "\n".join(lines)

    def print(self) -> None:
        print(self.render(), flush=True)
        print(flush=True)


def python_label() -> str:
    return f"Python {sys.version.split()[0]}"
