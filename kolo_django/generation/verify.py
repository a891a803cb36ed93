"""``--verify``: run a generated test with the project's own runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass
class VerifyResult:
    passed: bool
    output: str
    command: list[str]


def project_root() -> Path:
    """The folder holding manage.py (where the runner is started)."""
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if argv0 is not None and argv0.name == "manage.py" and argv0.exists():
        return argv0.resolve().parent
    from django.conf import settings

    base = getattr(settings, "BASE_DIR", None)
    if base and (Path(base) / "manage.py").exists():
        return Path(base)
    return Path.cwd()


def runner_command(style: str, target: Path, root: Path, *, junit: Path | None = None) -> list[str]:
    """The project's runner on ``target`` (a test file or a folder), from ``root``."""
    if style == "pytest":
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        if junit is not None:
            command.append(f"--junitxml={junit}")
        return [*command, "--rootdir", str(root), str(target)]
    label = target.relative_to(root) if target.is_relative_to(root) else target
    if label.suffix == ".py":
        label = label.with_suffix("")
        label_text = ".".join(label.parts)
    else:
        label_text = str(label)
    return [sys.executable, str(root / "manage.py"), "test", "--noinput", "-v", "2", label_text]


def run(
    command: list[str], root: Path, *, timeout: int = 600, env: dict[str, str] | None = None
) -> VerifyResult:
    """Run ``command`` in ``root``, in ``env`` (default: this process's environment)."""
    env = {**(os.environ if env is None else env), "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        result = subprocess.run(
            command,
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return VerifyResult(False, f"the tests did not finish within {timeout} s", command)
    return VerifyResult(result.returncode == 0, (result.stdout + result.stderr).strip(), command)


def verify(source: str, style: str, *, timeout: int = 600) -> VerifyResult:
    root = project_root()
    package = Path(tempfile.mkdtemp(prefix="kolo_verify_", dir=root))
    try:
        (package / "__init__.py").write_text("")
        (package / "test_generated.py").write_text(source)
        return run(
            runner_command(style, package / "test_generated.py", root), root, timeout=timeout
        )
    finally:
        shutil.rmtree(package, ignore_errors=True)
