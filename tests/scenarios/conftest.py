"""The session fixture behind the scenario suite (see harness.py)."""

from __future__ import annotations

from typing import Any

import pytest

from .harness import ScenarioRun, run_all


@pytest.fixture(scope="session")
def scenario_run(
    django_db_setup: Any, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> ScenarioRun:
    return run_all(tmp_path_factory.mktemp("scenarios"), django_db_blocker)
