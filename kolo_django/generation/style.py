"""``--style auto``: the runner the project is set up for."""

from __future__ import annotations

import configparser
import importlib.util
from pathlib import Path

from django.conf import settings


def detect_style(root: Path) -> str:
    runner = getattr(settings, "TEST_RUNNER", "django.test.runner.DiscoverRunner")
    if "pytest" in runner.lower():
        return "pytest"
    if runner != "django.test.runner.DiscoverRunner":
        return "unittest"
    if importlib.util.find_spec("pytest_django") is None:
        return "unittest"
    for folder in [root, *root.parents][:3]:
        if _configured(folder):
            return "pytest"
    return "unittest"


def _configured(folder: Path) -> bool:
    if (folder / "pytest.ini").exists():
        return True
    pyproject = folder / "pyproject.toml"
    if pyproject.exists():
        text = pyproject.read_text(errors="ignore")
        if "[tool.pytest.ini_options]" in text and (
            "DJANGO_SETTINGS_MODULE" in text or "django" in text
        ):
            return True
    for name, section in (("setup.cfg", "tool:pytest"), ("tox.ini", "pytest")):
        path = folder / name
        if path.exists():
            parser = configparser.ConfigParser()
            try:
                parser.read(path)
            except configparser.Error:
                continue
            if parser.has_section(section):
                return True
    conftest = folder / "conftest.py"
    return conftest.exists() and "pytest_django" in conftest.read_text(errors="ignore")
