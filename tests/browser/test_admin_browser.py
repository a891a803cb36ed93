"""The trace admin in a real browser: Playwright driving Debian's Chromium
against pytest-django's live server.

Screenshots of each step go to ``artifacts/screenshots/`` at the repository root.
Skipped only when ``/usr/bin/chromium`` or the ``playwright`` package is missing
(``apt-get install chromium``; ``pip install playwright``; no ``playwright install``).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.utils import quote
from django.core.management import call_command
from django.test import Client

from kolo_django.models import Trace

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="browser tests need the playwright package (pip install playwright)",
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    # The sync API runs an event loop in this thread; the live server's own
    # thread does the database work, but Django checks the test thread too.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


@pytest.fixture
def recorded(db: Any) -> dict[str, str]:
    """The example data, and three recorded requests: a list, a 404 and a POST redirect.

    Tests ask for it before ``live_server`` so the test database outlives the
    server thread's connection (PostgreSQL refuses to drop a database in use)."""
    from todos.models import TodoList

    call_command("seed_example", todos=30, stdout=open(os.devnull, "w"))
    Trace.objects.all().delete()
    client = Client()
    client.get("/todos/")
    client.get("/todos/999999/")
    client.login(username="alice", password="alice-password")
    todo_list = TodoList.objects.order_by("pk").first()
    fields = {"title": "Browser test", "priority": 2, "estimate_hours": "1.5"}
    response = client.post("/todos/new/", {**fields, "todo_list": todo_list.pk})
    assert response.status_code == 302
    return {t.path: t.pk for t in Trace.objects.all()}


def shot(page: Any, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


def test_log_in_filter_open_expand_generate(
    recorded: dict[str, str], live_server: Any, browser_page: Any
) -> None:
    page = browser_page
    base = live_server.url

    page.goto(f"{base}/admin/kolo_django/trace/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/kolo_django/trace/")
    rows = page.locator("#result_list tbody tr")
    listed = rows.all_inner_texts()
    # The live server records its own pages too (the login form...).
    assert rows.count() >= len(recorded)
    assert all(any(pk in row for row in listed) for pk in recorded.values())
    shot(page, "trace-list")

    page.click("#changelist-filter >> text=4xx client error")
    page.wait_for_url("**status_class=4xx**")
    assert rows.count() == 1
    assert "/todos/999999/" in rows.first.inner_text()
    shot(page, "trace-list-filtered")

    page.click("#changelist-filter >> text=2xx success")
    page.wait_for_url("**status_class=2xx**")
    statuses = page.locator("#result_list td.field-status").all_inner_texts()
    assert statuses and all(status.strip().startswith("2") for status in statuses)
    page.fill("#searchbar", "/todos/")
    page.press("#searchbar", "Enter")
    page.wait_for_url("**q=**")
    assert rows.count() == 1  # /todos/new/ redirected, /todos/999999/ was a 404
    rows.first.locator("th a").click()
    # The admin quotes "_" in ids as "_5F".
    page.wait_for_url(lambda url: f"/{quote(recorded['/todos/'])}/change/" in url)
    assert page.locator("#request").inner_text().count("/todos/") >= 1
    shot(page, "trace-detail")

    query = page.locator("li.kolo-sql details").first
    sql = query.locator("pre.kolo-sql")
    assert not sql.is_visible()
    query.locator("summary").click()
    assert sql.is_visible()
    assert "SELECT" in sql.inner_text()
    assert "\n" in sql.inner_text()  # reindented by sqlparse
    assert query.locator("table.kolo-rows tr").count() >= 2  # header and rows read
    query.scroll_into_view_if_needed()
    shot(page, "trace-detail-sql")

    page.check("input[name=style][value=pytest]")
    page.click("#generate button[name=generate]")
    page.wait_for_url("**style=pytest**")
    code = page.locator("#kolo-generated-code").inner_text()
    assert "def test_" in code
    assert re.findall(r"client\.get\(\s*['\"]([^'\"]+)['\"]", code) == ["/todos/"]
    compile(code, "generated.py", "exec")
    copy = page.locator("[data-kolo-copy]")
    copy.click()
    page.wait_for_function("document.querySelector('[data-kolo-copy]').textContent === 'Copied'")
    page.locator("#generate").scroll_into_view_if_needed()
    shot(page, "trace-generated")

    with page.expect_download() as download_info:
        page.click("#generate a[download]")
    download = download_info.value
    assert download.suggested_filename.startswith("test_") and download.suggested_filename.endswith(
        ".py"
    )
    assert (
        Path(download.path()).read_text() == code.rstrip("\n") + "\n"
        or "def test_" in Path(download.path()).read_text()
    )


def test_select_traces_and_generate_one_test(
    recorded: dict[str, str], live_server: Any, browser_page: Any
) -> None:
    page = browser_page
    page.goto(f"{live_server.url}/admin/login/?next=/admin/kolo_django/trace/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "alice-password")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/kolo_django/trace/")

    for path in ("/todos/", "/todos/999999/"):
        row = page.locator("#result_list tbody tr", has_text=recorded[path])
        row.locator("input.action-select").check()
    assert "2 of" in page.locator(".action-counter").inner_text()
    page.select_option("select[name=action]", "generate_test")
    page.click("button[name=index]")
    page.wait_for_selector("#kolo-generated-code")
    code = page.locator("#kolo-generated-code").inner_text()
    compile(code, "generated.py", "exec")
    # Replayed oldest first: the list, then the missing todo.
    paths = re.findall(r"client\.\w+\(\s*['\"]([^'\"]+)['\"]", code)
    assert paths == ["/todos/", "/todos/999999/"]
    shot(page, "trace-generate-many")
