import json
from django.db import connection
from django.test.utils import CaptureQueriesContext

def test_scratch(client, traces, seeded):
    with CaptureQueriesContext(connection) as ctx:
        r = client.get("/stats/")
    print(r.status_code, len(ctx.captured_queries))
    t = traces.get()
    doc = t.load_document()
    print(t.query_count, t.method, t.path, t.status_code)
    for e in doc["events"]:
        if e["type"] in ("sql", "orm"):
            print(e["type"], e.get("origin"), e.get("source"), e.get("model"), (e.get("sql") or "")[:100], len(e.get("rows", [])))
        else:
            print(e["type"], {k: v for k, v in e.items() if k in ("function", "name", "level")})
    print(json.dumps(doc["request"], indent=1)[:2000])
