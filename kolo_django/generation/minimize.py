"""``--minimize``: the smallest arrange that still passes with every assert intact.

Starting from a plan whose test passes, cuts are tried on the plan's typed steps, never
on the rendered text: whole seed rows (with the rows that cannot exist without them),
seed fields left to the model's default, M2M links and request headers. Asserts are
never touched. Each cut is rendered as its own variant of the test and all variants run
side by side in one invocation of the project's runner (see ``batch``); the cuts that
passed are combined, and the combination is checked in the next run together with the
cuts that become possible after it. A combination that fails is settled by trying its
prefixes, delta-debugging style. The result is verified alone, exactly as written.
"""

from __future__ import annotations

import ast
import dataclasses
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .batch import BatchProblem, Runner, variant_names
from .cuts import Arrangement, Counts, Cut, plural, state_of
from .plan import Plan

MAX_RUNS = 8
MAX_VARIANTS = 120  # variants in one run
MAX_PREFIXES = 24  # variants in one run while settling a combination that failed

Render = Callable[[Plan, bool], str]  # (plan, final) -> source; final: formatted
Log = Callable[[str], None]


class MinimizeError(Exception):
    """Minimizing could not start or run; the message is one line, ``output`` the runner's."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


@dataclass
class Report:
    """What --minimize did: counts before and after, the cuts kept, runs and time."""

    before: Counts
    after: Counts
    removed: list[Cut]
    runs: int
    seconds: float
    unminimized_reason: str = ""  # set when the reduced test failed alone and was dropped
    removed_lines: list[str] = field(default_factory=list)  # one per group

    def lines(self) -> list[str]:
        return [f"minimize: {line}" for line in self.removed_lines]

    def summary(self) -> str:
        b, a = self.before, self.after
        parts = [f"seeded rows {b.rows} → {a.rows}", f"fields {b.fields} → {a.fields}"]
        if b.links:
            parts.append(f"links {b.links} → {a.links}")
        parts.append(f"headers {b.headers} → {a.headers}")
        runs = f"{self.runs} run{'s' if self.runs != 1 else ''}"
        return (
            f"minimize: {', '.join(parts)}; {a.asserts} asserts kept; {runs}, {self.seconds:.1f} s"
        )


@dataclass
class Minimized:
    """The minimized test: its source (verified alone), its plan and the report."""

    source: str
    plan: Plan
    report: Report


# --- the finished source ---------------------------------------------------------------------


def count_asserts(source: str) -> int:
    """``assert`` statements and ``assert…()`` calls (assertEqual, assertRedirects, …)."""
    count = 0
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assert):
            count += 1
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.startswith("assert"):
                count += 1
    return count


def prune_imports(plan: Plan, source: str) -> Plan:
    """The plan without import lines the source no longer uses (a removed row's model)."""
    tree = ast.parse(source)
    used = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store)
    }
    kept = set()
    for line in plan.imports:
        if line.startswith("from "):
            names = line.split(" import ", 1)[1].strip(" ()").split(",")
            bound = {name.split(" as ")[-1].strip() for name in names}
        else:
            module = line.split(None, 1)[1]
            bound = {module.split(" as ")[1].strip() if " as " in module else module.split(".")[0]}
        if bound & used:
            kept.add(line)
    return dataclasses.replace(plan, imports=kept)


# --- the search ----------------------------------------------------------------------------


class _Search:
    def __init__(
        self, plan: Plan, render: Render, runner: Runner, max_runs: int, log: Log | None
    ) -> None:
        self.arrangement = Arrangement(plan)
        self.render = render
        self.runner = runner
        self.max_runs = max_runs
        self.log = log or (lambda line: None)
        self.runs = 0
        self.accepted: list[Cut] = []
        self.rejected: set[Cut] = set()
        self.splits: list[Cut] = []  # halves of field groups that failed whole
        self.last_output = ""

    def batch(
        self, variants: dict[Any, list[Cut]], what: Callable[[dict[Any, bool]], str]
    ) -> dict[Any, bool]:
        """Run the variants side by side; ``what(results)`` describes the run in the log."""
        names = variant_names(len(variants))
        keys = list(variants)
        sources = {
            name: self.render(self.arrangement.apply(variants[key]), False)
            for name, key in zip(names, keys, strict=True)
        }
        try:
            result = self.runner.run(sources)
        except BatchProblem as exc:
            raise MinimizeError(f"minimize: {exc}", exc.output) from None
        self.runs += 1
        passed = {
            key: result.passed.get(name, False) for name, key in zip(names, keys, strict=True)
        }
        self.log(f"minimize: run {self.runs}: {what(passed)} ({result.seconds:.1f} s)")
        self.last_output = result.output
        return passed

    def verify_alone(self, source: str) -> bool:
        """Run the exact final source once, on its own."""
        try:
            result = self.runner.run({"v000": source})
        except BatchProblem as exc:
            raise MinimizeError(f"minimize: {exc}", exc.output) from None
        self.runs += 1
        passed = result.passed.get("v000", False)
        verdict = "passed" if passed else "failed"
        self.log(
            f"minimize: run {self.runs}: the reduced test alone {verdict} ({result.seconds:.1f} s)"
        )
        self.last_output = result.output
        return passed

    def candidates(self, base: list[Cut], splits: bool = True) -> list[Cut]:
        fresh = self.arrangement.candidates(base, self.rejected)
        if not splits:
            return fresh[:MAX_VARIANTS]
        state = state_of(base)
        taken = set(base)
        pending = [
            c
            for c in self.splits
            if c not in fresh
            and c not in taken
            and c not in self.rejected
            and not any(r in state.rows or (r, c.field) in state.resets for r in c.rows)
            and not any(o in state.rows or t in state.rows for o, t in c.links)
        ]
        return (fresh + pending)[:MAX_VARIANTS]

    def note_failures(self, failed: Iterable[Cut]) -> None:
        """Reject the cuts; a group of fields or links that failed whole is tried
        again in halves, in the runs that happen anyway."""
        arrangement = self.arrangement
        for cut in failed:
            self.rejected.add(cut)
            if cut.kind == "fields" and len(cut.rows) > 1:
                half = len(cut.rows) // 2
                model = arrangement.rows[cut.rows[0]].model
                for rows in (cut.rows[:half], cut.rows[half:]):
                    self.splits.append(arrangement.field_cut(model, cut.field, rows))
            elif cut.kind == "links" and len(cut.links) > 1:
                half = len(cut.links) // 2
                owner = cut.links[0][0]
                model = arrangement.rows[owner].model if owner in arrangement.rows else owner
                for links in (cut.links[:half], cut.links[half:]):
                    self.splits.append(arrangement.link_cut(model, cut.field, links))

    def final(self, cuts: list[Cut]) -> tuple[Plan, str]:
        """The plan and the source as they will be written (formatted, unused imports gone)."""
        reduced = self.arrangement.apply(cuts)
        reduced = prune_imports(reduced, self.render(reduced, False))
        return reduced, self.render(reduced, True)

    def run(self) -> tuple[list[Cut], bool]:
        """The cuts kept, and whether the final source already passed alone."""
        first = self.candidates([])
        results = self.batch(
            {"base": [], **{c: [c] for c in first}},
            lambda r: f"the test as generated {_verdict(r['base'])}; {_tally(r, first)} alone",
        )
        if not results.pop("base"):
            # Run it alone for output that is about it only.
            self.verify_alone(self.render(self.arrangement.plan, True))
            raise MinimizeError(
                "the generated test fails before minimizing (output above)", self.last_output
            )
        passing = self.sort([c for c in first if results[c]])
        self.note_failures(c for c in first if not results[c])
        # One run is kept for verifying the result alone.
        while self.runs < self.max_runs - 1:
            if len(passing) == 1:  # it passed on this very base: nothing to combine
                self.accepted += passing
                passing = []
                continue
            if passing:
                combined = self.accepted + passing
                extra = self.candidates(combined)
                if not extra:
                    # The combination is the result: run it exactly as it will be written.
                    if self.verify_alone(self.final(combined)[1]):
                        self.accepted = combined
                        return self.accepted, True
                    self.settle(passing)
                    passing = []
                    continue
                results = self.batch(
                    {"combined": combined, **{c: [*combined, c] for c in extra}},
                    lambda r, both=passing, extra=extra: (
                        f"{plural(len(both), 'cut')} together "
                        + (f"passed; {_tally(r, extra)} on top" if r["combined"] else "failed")
                    ),
                )
                if results.pop("combined"):
                    self.accepted = combined
                    passing = self.sort([c for c in extra if results[c]])
                    self.note_failures(c for c in extra if not results[c])
                else:
                    self.settle(passing)
                    passing = []
                continue
            # Only new cuts start a run; halves of failed groups ride along.
            if not self.candidates(self.accepted, splits=False):
                break
            extra = self.candidates(self.accepted)
            results = self.batch(
                {c: [*self.accepted, c] for c in extra},
                lambda r, extra=extra: f"{_tally(r, extra)} alone",
            )
            passing = self.sort([c for c in extra if results[c]])
            self.note_failures(c for c in extra if not results[c])
        # Passing cuts never tried together are left out: nothing verified them as a whole.
        return self.accepted, False

    @staticmethod
    def sort(cuts: list[Cut]) -> list[Cut]:
        """Bigger cuts first: when a combination fails, its prefixes keep them."""
        order = {"rows": 0, "links": 1, "headers": 2, "fields": 3}
        return sorted(cuts, key=lambda c: (order[c.kind], -len(c.rows)))

    def settle(self, group: list[Cut]) -> None:
        """The cuts passed one by one but not together: keep the longest prefix that
        passes and reject the cut after it. The rest are tried again one by one on
        the new base, as new cuts are."""
        if self.runs >= self.max_runs - 1:
            return
        sizes = _sizes(len(group) - 1)
        if not sizes:
            self.rejected.update(group)
            return
        results = self.batch(
            {k: [*self.accepted, *group[:k]] for k in sizes},
            lambda r: (
                f"{plural(len(group), 'cut')} failed together; the longest passing "
                f"prefix keeps {max((k for k in sizes if r[k]), default=0)}"
            ),
        )
        best = max((k for k in sizes if results[k]), default=0)
        self.accepted += group[:best]
        if best == 0:  # the first cut fails on its own now
            self.rejected.add(group[0])


def _verdict(passed: bool) -> str:
    return "passed" if passed else "failed"


def _tally(results: dict[Any, bool], cuts: list[Cut]) -> str:
    return f"{sum(results[c] for c in cuts)} of {plural(len(cuts), 'cut')} passed"


def _sizes(n: int) -> list[int]:
    if n <= 0:
        return []
    if n <= MAX_PREFIXES:
        return list(range(1, n + 1))
    step = n / MAX_PREFIXES
    return sorted({max(1, round(step * i)) for i in range(1, MAX_PREFIXES + 1)} | {1, n})


def minimize(
    plan: Plan,
    *,
    render: Render,
    runner: Runner,
    max_runs: int = MAX_RUNS,
    log: Log | None = None,
) -> Minimized:
    """The plan with its arrange cut down, the final source (verified alone) and a report.

    ``render(plan, final)`` gives the test's source, formatted when ``final``; ``runner``
    runs variants (``batch.ProjectRunner``). Raises MinimizeError when the test as
    generated fails or the runner cannot run."""
    started = time.monotonic()
    search = _Search(plan, render, runner, max(max_runs, 2), log)
    arrangement = search.arrangement
    original = render(plan, True)
    before = arrangement.counts(plan)
    cuts, verified = search.run()
    reduced, source = search.final(cuts)
    after = arrangement.counts(reduced)
    if after.asserts != before.asserts or count_asserts(source) != count_asserts(original):
        raise MinimizeError("minimize: the reduced test lost an assert; nothing was written")
    report = Report(before, after, list(cuts), 0, 0.0, "", arrangement.describe(cuts))
    if cuts and not verified and not search.verify_alone(source):
        report.unminimized_reason = (
            "the reduced test failed when run alone; the test is left as generated"
        )
        reduced, source, report.after = plan, original, before
        report.removed, report.removed_lines = [], []
    report.runs = search.runs
    report.seconds = time.monotonic() - started
    return Minimized(source, reduced, report)


def renderer(style: str, template: str | None = None, formatter: str | None = None) -> Render:
    """Render as ``kolo_generate`` does; variants skip the formatter (only the final
    source is read by people)."""
    from ..conf import get_config
    from .render import render

    config = get_config()
    template = template or config["TEST_TEMPLATE"]
    formatter = formatter or config["FORMATTER"]

    def render_plan(plan: Plan, final: bool) -> str:
        return render(
            plan, style=style, template=template, formatter=formatter if final else "none"
        )

    return render_plan
