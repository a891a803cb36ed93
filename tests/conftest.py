from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from tests.helpers_recording import stub_api


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


@pytest.fixture
def todo_pk(seeded: None) -> int:
    from todos.models import Todo

    return Todo.objects.exclude(tags=None).order_by("pk").first().pk


@pytest.fixture
def api_url() -> Iterator[str]:
    with stub_api() as url, override_settings(EXAMPLE_API_URL=url):
        yield url
