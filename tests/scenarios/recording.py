"""Record scenarios and keep their trace documents (for the minimize test and report)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from io import StringIO
from pathlib import Path
from typing import Any

from .harness import _Rollback, quiet_request_log
from .scenarios import SCENARIOS, Session


def record_documents(
    names: Iterable[str],
    api_url: str,
    media_root: Path,
    extra: dict[str, Callable[[Session], None]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The trace documents of each named scenario (from SCENARIOS, or ``extra``),
    recorded on freshly seeded data.

    The database is left as it was: everything runs in a transaction rolled back at the
    end. A scenario that fails while recording raises (it is a broken test setup)."""
    from django.core import mail
    from django.core.management import call_command
    from django.db import transaction
    from django.test import override_settings

    from kolo_django import storage

    if not hasattr(mail, "outbox"):
        mail.outbox = []
    documents: dict[str, list[dict[str, Any]]] = {}
    with contextlib.suppress(_Rollback), transaction.atomic(), quiet_request_log():
        with override_settings(EXAMPLE_API_URL=api_url, MEDIA_ROOT=str(media_root)):
            call_command("seed_example", todos=60, stdout=StringIO())
            for name in names:
                session = Session()
                with contextlib.suppress(_Rollback), transaction.atomic():
                    {**SCENARIOS, **(extra or {})}[name](session)
                    documents[name] = [storage.load(i) for i in session.trace_ids]
                    raise _Rollback
        raise _Rollback
    return documents
