"""Section 1: request time through the test Client, in this process.

Each round runs every configuration in turn on the same view, starting one
configuration later each round (off, gen, full, kolo; then gen, full, kolo,
off; ...): a process slows a little as it ages, and a fixed order would charge
that to the configurations that come last. A figure is the median over rounds
of the round's time divided by the same round's ``off`` time. Before each
batch, off the clock, the garbage of the earlier ones is collected. The timed
batch includes storing the traces: kolo_django's writer thread and Kolo's
background saves are both waited for before the clock stops.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from .common import VIEW_LABELS, VIEWS, Table, median, quiet, ratio_text, test_client, verdict
from .configs import CONFIGS, kolo_settings, middleware_for

WARMUP = 10


class Phases:
    """Time spent in the middleware's two end-of-request steps, by wrapping
    them on the class for this process: building the document (request and
    response capture, redaction) and storing it (compress, insert, commit,
    prune). What is left of the overhead is capture during the request."""

    def __init__(self) -> None:
        self.totals = {"finish": 0.0, "store": 0.0}
        self._installed = False

    def install(self) -> None:
        if self._installed:
            return
        from kolo_django.middleware import KoloMiddleware

        for phase, attr in (("finish", "_finish"), ("store", "_store")):
            setattr(KoloMiddleware, attr, self._timed(phase, getattr(KoloMiddleware, attr)))
        self._installed = True

    def _timed(self, phase: str, method: Any) -> Any:
        totals = self.totals

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                totals[phase] += time.perf_counter() - started

        return timed

    def snapshot(self) -> dict[str, float]:
        return dict(self.totals)


PHASES = Phases()


def saves() -> int:
    from kolo_django import storage

    return storage.saves()


def flush_kolo_django() -> None:
    from kolo_django import storage

    if not storage.flush(timeout=120):
        raise RuntimeError("kolo_django's writer did not finish within 120 s")


def wait_for_kolo() -> None:
    from kolo.core import wait_for_pending_saves

    wait_for_pending_saves(timeout=120)


def drain_kolo_emits() -> None:
    """Wait, off the clock, for Kolo's auto-emit subprocesses (it turns saved
    traces into text files in a separate process, at most every 0.5 s), so
    that they do not run into the next configuration's batch."""
    from kolo import core

    timer = getattr(core, "_auto_emit_followup_timer", None)
    if timer is not None:
        timer.join(timeout=60)
    for child in list(getattr(core, "_auto_emit_children", [])):
        try:
            child.wait(timeout=60)
        except Exception:
            pass


def run_batch(
    config: str,
    path: str,
    requests: int,
    warmup: int = WARMUP,
    extra: dict[str, Any] | None = None,
) -> tuple[float, dict[str, float]]:
    """Seconds for ``requests`` GETs of ``path`` under ``config`` (its
    ``KOLO_DJANGO`` updated with ``extra``), and the seconds of it spent in
    each end-of-request phase."""
    from django.conf import settings
    from django.test import override_settings

    with override_settings(
        MIDDLEWARE=middleware_for(config, settings.BASE_MIDDLEWARE),
        KOLO_DJANGO=kolo_settings(config, **(extra or {})),
    ):
        # A new Client builds a new handler, which loads MIDDLEWARE afresh.
        client = test_client()
        with quiet():
            for _ in range(warmup):
                client.get(path)
            if config == "kolo":
                wait_for_kolo()
            flush_kolo_django()
        gc.collect()
        before = saves()
        phases_before = PHASES.snapshot()
        started = time.perf_counter()
        for _ in range(requests):
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"{path} answered {response.status_code} under {config}")
        if config == "kolo":
            wait_for_kolo()
        # Traces still queued for the writer thread count in the batch.
        flush_kolo_django()
        elapsed = time.perf_counter() - started
        stored = saves() - before
        phases = {k: v - phases_before[k] for k, v in PHASES.snapshot().items()}
        if config == "kolo":
            drain_kolo_emits()
    if config in ("gen", "full") and stored != requests:
        raise RuntimeError(f"{config}: {stored} traces stored for {requests} requests")
    return elapsed, phases


def run(
    *, rounds: int, requests: int, configs: list[str], views: list[str], warmup: int = WARMUP
) -> dict[str, Any]:
    PHASES.install()
    times: dict[str, dict[str, list[float]]] = {v: {c: [] for c in configs} for v in views}
    phases: dict[str, dict[str, list[dict[str, float]]]] = {
        v: {c: [] for c in configs} for v in views
    }
    for round_index in range(rounds):
        shift = round_index % len(configs)
        order = configs[shift:] + configs[:shift]
        for view in views:
            for config in order:
                elapsed, spent = run_batch(config, VIEWS[view], requests, warmup)
                times[view][config].append(elapsed)
                phases[view][config].append(spent)
        print(f"  section 1: round {round_index + 1}/{rounds} done", flush=True)
    results: dict[str, Any] = {"rounds": rounds, "requests": requests, "views": {}}
    for view in views:
        per_config = {}
        for config in configs:
            ratios = [
                t / off for t, off in zip(times[view][config], times[view]["off"], strict=True)
            ]
            per_config[config] = {
                "seconds": times[view][config],
                "ms_per_request": median(times[view][config]) / requests * 1000,
                "ratios": ratios,
                "ratio": median(ratios),
                "finish_ms": median([p["finish"] for p in phases[view][config]]) / requests * 1000,
                "store_ms": median([p["store"] for p in phases[view][config]]) / requests * 1000,
            }
        results["views"][view] = per_config
    return results


def targets(results: dict[str, Any], python: tuple[int, int]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) rows for the summary."""
    rows = []
    for view, per_config in results["views"].items():
        gen = per_config.get("gen")
        if gen:
            rows.append((f"gen-level ≤ ×1.3 ({view})", f"×{gen['ratio']:.2f}", gen["ratio"] <= 1.3))
        full = per_config.get("full")
        if full and python >= (3, 12):
            rows.append(
                (f"full ≤ ×1.5 on 3.12+ ({view})", f"×{full['ratio']:.2f}", full["ratio"] <= 1.5)
            )
        kolo = per_config.get("kolo")
        if full and python < (3, 12):
            if kolo:
                rows.append(
                    (
                        f"full below Kolo 3.6.1 on 3.11 ({view})",
                        f"×{full['ratio']:.2f} vs ×{kolo['ratio']:.2f}",
                        full["ratio"] < kolo["ratio"],
                    )
                )
            else:
                rows.append(
                    (
                        f"full below Kolo 3.6.1 on 3.11 ({view})",
                        f"×{full['ratio']:.2f}; kolo not installed",
                        None,
                    )
                )
    return rows


def table(results: dict[str, Any], python: tuple[int, int]) -> Table:
    t = Table(
        f"1. Request time, test Client in one process "
        f"({results['requests']} requests × {results['rounds']} rounds; "
        "median over rounds, min–max in brackets)",
        ["view", "configuration", "ms/request", "× off", "document ms", "store ms", "target"],
    )
    for view, per_config in results["views"].items():
        for config, figures in per_config.items():
            target = ""
            if config == "gen":
                target = f"≤ ×1.3: {verdict(figures['ratio'] <= 1.3)}"
            elif config == "full" and python >= (3, 12):
                target = f"≤ ×1.5: {verdict(figures['ratio'] <= 1.5)}"
            elif config == "full" and "kolo" in per_config:
                below = figures["ratio"] < per_config["kolo"]["ratio"]
                target = f"below Kolo: {verdict(below)}"
            t.add(
                VIEW_LABELS[view],
                CONFIGS[config],
                f"{figures['ms_per_request']:.2f}",
                "1.00" if config == "off" else ratio_text(figures["ratios"]),
                f"{figures['finish_ms']:.2f}" if config in ("gen", "full") else "",
                f"{figures['store_ms']:.2f}" if config in ("gen", "full") else "",
                target,
            )
    return t
