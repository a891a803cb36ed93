"""Renders a plan through a Jinja2 template, then tidies the code."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2

from .plan import Plan

BUILTIN_DIR = Path(__file__).parent / "templates"
STYLES = ("unittest", "pytest")
# Built-in templates that --template may name without a path.
BUILTIN_TEMPLATES = ("unittest", "pytest", "request_factory")
STDLIB = {"base64", "datetime", "decimal", "json", "re", "uuid", "unittest", "urllib"}
THIRD_PARTY = {
    "httpretty",
    "time_machine",
    "freezegun",
    "pytest",
    "pytest_django",
    "factory",
    "responses",
}


class TemplateProblem(Exception):
    """A template that is missing or does not compile (message names file and line)."""


def environment(extra_dirs: list[str] = ()) -> jinja2.Environment:  # type: ignore[assignment]
    # One per folder list: compiling a template costs far more than rendering it, and
    # --minimize renders a plan many times. Jinja2 reloads templates changed on disk.
    return _environment(tuple(extra_dirs))


@functools.lru_cache(maxsize=32)
def _environment(extra_dirs: tuple[str, ...]) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader([*extra_dirs, str(BUILTIN_DIR)])
    env = jinja2.Environment(
        loader=loader,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["pyrepr"] = repr
    return env


def features() -> dict[str, bool]:
    """What the project has, for templates that set up requests themselves."""
    from django.apps import apps

    return {
        "sessions": apps.is_installed("django.contrib.sessions"),
        "messages": apps.is_installed("django.contrib.messages"),
    }


def style_imports(plan: Plan, style: str) -> set[str]:
    imports = set(plan.imports)
    ops = {a.op for block in plan.blocks for a in block.assertions}
    if style == "request_factory":
        imports.update(
            {"from django.test import RequestFactory, TestCase", "from django.urls import resolve"}
        )
        if any("response.json()" in a.left.text for block in plan.blocks for a in block.assertions):
            imports.add("import json")
        if features()["sessions"]:
            imports.add("from django.contrib.sessions.middleware import SessionMiddleware")
        if features()["messages"]:
            imports.add("from django.contrib.messages.middleware import MessageMiddleware")
        if any(
            not any(s.kind == "login" and s.user for s in block.pre_steps) for block in plan.blocks
        ):
            imports.add("from django.contrib.auth.models import AnonymousUser")
    elif style == "unittest":
        imports.add("from django.test import TestCase")
    else:
        imports.add("import pytest")
        names = [
            n
            for op, n in (("redirects", "assertRedirects"), ("template", "assertTemplateUsed"))
            if op in ops
        ]
        if names:
            imports.add(f"from pytest_django.asserts import {', '.join(names)}")
    return imports


def import_block(imports: set[str]) -> str:
    """Imports grouped and sorted the way isort's default profile does:
    standard library, third party (Django included), then the project."""
    plain: list[set[str]] = [set(), set(), set()]
    names: list[dict[str, set[str]]] = [{}, {}, {}]
    for line in imports:
        words = line.split()
        module = words[1]
        top = module.split(".")[0]
        group = 0 if top in STDLIB else 1 if top in THIRD_PARTY or top == "django" else 2
        if words[0] == "import":
            plain[group].add(module)
        else:
            names[group].setdefault(module, set()).add(line.split(" import ", 1)[1])
    blocks = []
    for group in range(3):
        lines = [f"import {module}" for module in sorted(plain[group])]
        lines += [
            f"from {module} import {', '.join(sorted(found, key=_name_key))}"
            for module, found in sorted(names[group].items())
        ]
        if lines:
            blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _name_key(name: str) -> tuple[int, str]:
    # isort orders CONSTANTS, then Classes, then functions.
    bare = name.split(" as ")[0]
    kind = 0 if bare.isupper() else 1 if bare[:1].isupper() else 2
    return (kind, bare)


def render(
    plan: Plan, *, style: str, template: str | None = None, formatter: str | None = None
) -> str:
    extra_dirs: list[str] = []
    name = f"kolo_django/{style}.py.j2"
    if template in BUILTIN_TEMPLATES:
        name, template = f"kolo_django/{template}.py.j2", None
    if template:
        path = Path(template)
        if not path.is_file():
            raise TemplateProblem(f"template {template} does not exist")
        extra_dirs.append(str(path.parent.resolve()))
        name = path.name
    env = environment(extra_dirs)
    try:
        tmpl = env.get_template(name)
        imports = style_imports(plan, _import_style(tmpl, name, style))
        code = tmpl.render(
            plan=plan, style=style, imports=import_block(imports), features=features()
        )
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template {exc.filename or name}, line {exc.lineno}: {exc.message}"
        ) from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateProblem(f"template {exc.name} not found") from None
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(f"template {name}: {exc.message}") from None
    return tidy(code, formatter)


def _import_style(tmpl: jinja2.Template, name: str, style: str) -> str:
    """The built-in template a template is (or extends) decides the imports,
    so a unittest-based template works whatever --style says."""
    builtin = re.fullmatch(r"kolo_django/(\w+)\.py\.j2", name)
    if builtin is None and tmpl.filename:
        source = Path(tmpl.filename).read_text(errors="ignore")
        builtin = re.search(r"""\{%-?\s*extends\s+["']kolo_django/(\w+)\.py\.j2["']""", source)
    found = builtin.group(1) if builtin else style
    return found if found in BUILTIN_TEMPLATES else style


def tidy(code: str, formatter_name: str | None = None) -> str:
    """Format with ruff (or black) when installed; otherwise trim blank runs."""
    lines: list[str] = []
    for line in code.splitlines():
        line = line.rstrip()
        if not line and len(lines) >= 2 and not lines[-1] and not lines[-2]:
            continue
        lines.append(line)
    code = "\n".join(lines).strip("\n") + "\n"
    if formatter_name == "none":
        return code
    return _format(code, formatter_name)


def _tool(name: str) -> str | None:
    local = Path(sys.executable).with_name(name)
    return str(local) if local.exists() else shutil.which(name)


def formatter() -> str | None:
    for name in ("ruff", "black"):
        if _tool(name):
            return name
    return None


def _format(code: str, preferred: str | None = None) -> str:
    name = preferred or formatter()
    tool = _tool(name) if name else None
    if not tool:
        return code
    if name == "ruff":
        commands: list[list[str]] = [
            [
                tool,
                "check",
                "--quiet",
                "--select",
                "I,F401",
                "--fix",
                "--exit-zero",
                "--stdin-filename",
                "test_generated.py",
                "-",
            ],
            [tool, "format", "--quiet", "--stdin-filename", "test_generated.py", "-"],
        ]
    else:
        commands = [[tool, "--quiet", "-"]]
    for command in commands:
        try:
            result = subprocess.run(
                command, input=code, capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return code
        if result.returncode == 0 and result.stdout.strip():
            code = result.stdout
    return code
