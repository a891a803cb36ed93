import importlib.util, sys
import pytest
from tests.test_recording_async import test_concurrent_call_capture, urlpatterns  # noqa

pytestmark = pytest.mark.urls("tests.test_recording_async")

def test_old(traces, db, monkeypatch):
    spec = importlib.util.spec_from_file_location("kolo_django.recording.old_frames", "/tmp/old_frames.py")
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    monkeypatch.setattr("kolo_django.middleware.frames", mod)
    test_concurrent_call_capture.__wrapped__(traces, db) if hasattr(test_concurrent_call_capture, "__wrapped__") else None
    from django.test import override_settings
    with override_settings(KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "CALLS_INCLUDE": ["tests.test_recording_async"]}):
        from tests.test_recording_async import _gather
        from tests.helpers_recording import documents
        _gather([f"/staggered/?i={i}" for i in range(6)])
        for d in documents(traces):
            print([e.get("function") for e in d["events"] if e["type"] == "call"])
