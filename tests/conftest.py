from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def traces(db: Any) -> Any:
    """The Trace manager, emptied before the test."""
    from kolo_django.models import Trace

    Trace.objects.all().delete()
    return Trace.objects


@pytest.fixture
def seeded(db: Any) -> None:
    from django.core.management import call_command

    call_command("seed_example", todos=60, stdout=open("/dev/null", "w"))
