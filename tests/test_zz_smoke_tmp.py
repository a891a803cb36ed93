import time
def test_smoke(client, admin_client, traces, seeded):
    r = client.get("/todos/")
    t = traces.first()
    r = admin_client.get("/admin/kolo_django/trace/")
    assert r.status_code == 200, r.content[:2000]
    open("/tmp/list.html","wb").write(r.content)
    t0=time.perf_counter()
    r = admin_client.get(f"/admin/kolo_django/trace/{t.pk}/change/")
    print("detail", time.perf_counter()-t0)
    assert r.status_code == 200, r.content[:3000]
    open("/tmp/detail.html","wb").write(r.content)
    t0=time.perf_counter()
    r = admin_client.get(f"/admin/kolo_django/trace/{t.pk}/change/?style=pytest")
    print("gen", time.perf_counter()-t0)
    open("/tmp/detail_gen.html","wb").write(r.content)
    r = admin_client.get(f"/admin/kolo_django/trace/{t.pk}/download/?style=pytest")
    print(r.status_code, r["Content-Disposition"], r.content[:300])
