from django.test import override_settings
import pytest
from tests.test_recording_async import _gather, urlpatterns  # noqa
from tests.helpers_recording import documents

pytestmark = pytest.mark.urls("tests.test_recording_async")

@override_settings(KOLO_DJANGO={"ENABLED": True, "RECORD_DURING_TESTS": True, "CALLS_INCLUDE": ["tests.test_recording_async"]})
def test_scratch(traces, seeded):
    _gather([f"/async/?marker=a{i}&from=1" for i in range(3)])
    for d in documents(traces):
        print([(e["type"], e.get("function"), e.get("id")) for e in d["events"] if e["type"] in ("call", "return")])
