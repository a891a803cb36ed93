"""Drive a browsing session (23 requests) against a running example server.

Usage: python drive.py http://127.0.0.1:8000

Expects a seeded database (``manage.py seed_example``) and, for /weather/,
the stub API (``stub_api.py``). Prints "METHOD PATH STATUS" per request and
exits non-zero if any response is a server error or otherwise unexpected.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

import requests


class Driver:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.failures = 0

    def hit(self, method: str, path: str, expected: set[int], **kwargs: Any) -> requests.Response:
        # No redirect following: the status printed is the view's own.
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 30)
        response = self.session.request(method, self.base_url + path, **kwargs)
        ok = response.status_code in expected and response.status_code < 500
        self.failures += not ok
        print(f"{method} {path} {response.status_code}{'' if ok else '  <-- unexpected'}")
        return response

    def csrf_token(self) -> str:
        return self.session.cookies.get("csrftoken", "")


def main() -> int:
    parser = argparse.ArgumentParser(description="Drive requests against the example project.")
    parser.add_argument("base_url", help="e.g. http://127.0.0.1:8000")
    args = parser.parse_args()
    d = Driver(args.base_url)

    listing = d.hit("GET", "/todos/", {200})
    match = re.search(r'href="/todos/(\d+)/"', listing.text)
    todo_id = match.group(1) if match else "1"
    d.hit("GET", f"/todos/{todo_id}/", {200})

    d.hit("GET", "/accounts/login/", {200})
    d.hit(
        "POST",
        "/accounts/login/",
        {302},
        data={
            "username": "alice",
            "password": "alice-password",
            "csrfmiddlewaretoken": d.csrf_token(),
        },
    )

    form_page = d.hit("GET", "/todos/new/", {200})
    select = re.search(r'<select name="todo_list".*?</select>', form_page.text, re.S)
    list_ids = re.findall(r'<option value="(\d+)"', select.group(0)) if select else []
    list_id = list_ids[0] if list_ids else "1"
    form = {
        "title": "Water the plants",
        "notes": "Created by drive.py",
        "priority": "2",
        "estimate_hours": "0.50",
        "due_date": "",
        "todo_list": list_id,
    }
    created = d.hit(
        "POST", "/todos/new/", {302}, data={**form, "csrfmiddlewaretoken": d.csrf_token()}
    )
    # Follow the created row: view it, edit it, complete it.
    detail = created.headers.get("Location", f"/todos/{todo_id}/")
    d.hit("GET", detail, {200})
    d.hit("GET", f"{detail}edit/", {200})
    edited = {**form, "title": "Water the plants and the herbs", "priority": "3"}
    d.hit("POST", f"{detail}edit/", {302}, data={**edited, "csrfmiddlewaretoken": d.csrf_token()})
    d.hit("POST", f"{detail}complete/", {302}, data={"csrfmiddlewaretoken": d.csrf_token()})
    d.hit("GET", "/todos/?page=2", {200})
    d.hit("GET", "/todos/99999/", {404})
    d.hit("GET", "/dashboard/", {200})

    d.hit("GET", "/stats/", {200})
    d.hit("GET", "/report/", {200})
    d.hit("GET", "/api/todos/", {200})
    d.hit(
        "POST",
        "/api/todos/",
        {201},
        json={"title": "Reply to emails", "todo_list": int(list_id), "priority": 3},
    )
    d.hit("GET", "/weather/", {200})
    # Basic auth as bob; the view ignores alice's session cookie.
    d.hit("GET", "/api/whoami/", {200}, auth=("bob", "bob-password"))
    d.hit("GET", "/catalog/categories/editors/", {200})
    d.hit("GET", "/catalog/products/KB-01/suppliers/", {200})
    d.hit("GET", "/catalog/products/KB-01/reviews/", {200})
    d.hit("GET", "/todos/", {200})

    if d.failures:
        print(f"{d.failures} unexpected response(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
