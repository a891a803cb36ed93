"""The recorded scenarios: each drives the test client against the seeded example data.

A scenario is a function taking a :class:`Session`. Requests made with ``record=True``
(the default) become the scenario's traces, in order; the others only set the stage.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

PASSWORDS = {"alice": "alice-password", "bob": "bob-password"}
BASIC_TOKEN = base64.b64encode(b"bob:bob-password").decode()
PROJECT_ID = "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"


class ScenarioProblem(AssertionError):
    """The scenario itself did not behave as expected while recording."""


class Session:
    """One scenario's test client; it notes the traces and every secret it sees."""

    def __init__(self) -> None:
        self.client = Client()
        self.trace_ids: list[str] = []
        self.secrets: set[str] = set()

    def login(self, username: str) -> None:
        if not self.client.login(username=username, password=PASSWORDS[username]):
            raise ScenarioProblem(f"could not log in as {username}")
        self._remember_cookies()

    def request(
        self, method: str, path: str, *, expect: int, record: bool = True, **kwargs: Any
    ) -> Any:
        from kolo_django.models import Trace

        before = set(Trace.objects.values_list("pk", flat=True))
        response = getattr(self.client, method)(path, **kwargs)
        self._remember_cookies()
        new = sorted(set(Trace.objects.values_list("pk", flat=True)) - before)
        if response.status_code != expect:
            raise ScenarioProblem(
                f"{method.upper()} {path} returned {response.status_code}, expected {expect}"
            )
        if record:
            if len(new) != 1:
                raise ScenarioProblem(f"{method.upper()} {path} stored {len(new)} traces, not 1")
            self.trace_ids.append(new[0])
        return response

    def get(self, path: str, *, expect: int = 200, **kwargs: Any) -> Any:
        return self.request("get", path, expect=expect, **kwargs)

    def post(self, path: str, *, expect: int, **kwargs: Any) -> Any:
        return self.request("post", path, expect=expect, **kwargs)

    def _remember_cookies(self) -> None:
        for name, morsel in self.client.cookies.items():
            if not morsel.value:
                continue
            self.secrets.add(morsel.value)
            if name == "sessionid":
                auth_hash = SessionStore(morsel.value).load().get("_auth_user_hash")
                if auth_hash:
                    self.secrets.add(auth_hash)


# --- data helpers --------------------------------------------------------------------------


def _models() -> Any:
    from todos import models

    return models


def todo_where(**filters: Any) -> Any:
    todo = _models().Todo.objects.filter(**filters).order_by("pk").first()
    if todo is None:
        raise ScenarioProblem(f"no seeded todo matches {filters}")
    return todo


def todo_list(name: str) -> Any:
    return _models().TodoList.objects.get(name=name)


def tag(slug: str) -> Any:
    return _models().Tag.objects.get(slug=slug)


def user(username: str) -> Any:
    return get_user_model().objects.get(username=username)


def created_pk(response: Any) -> int:
    """The pk of the todo a create view redirected to (``/todos/<pk>/``)."""
    parts = response["Location"].strip("/").split("/")
    if len(parts) != 2 or parts[0] != "todos" or not parts[1].isdigit():
        raise ScenarioProblem(f"unexpected redirect {response['Location']}")
    return int(parts[1])


def form_data(todo: Any, **changes: Any) -> dict[str, Any]:
    """A complete TodoForm submission for ``todo``, with ``changes`` applied."""
    data = {
        "title": todo.title,
        "notes": todo.notes,
        "priority": str(todo.priority),
        "estimate_hours": str(todo.estimate_hours),
        "due_date": todo.due_date.isoformat() if todo.due_date else "",
        "todo_list": str(todo.todo_list_id),
        "tags": [str(pk) for pk in todo.tags.values_list("pk", flat=True)],
    }
    data.update(changes)
    return data


NEW_TODO_FORM = {
    "title": "Write the scenario suite",
    "notes": "Recorded by tests/scenarios.",
    "priority": "3",
    "estimate_hours": "2.50",
    "due_date": "2025-04-15",
}


def new_todo_form() -> dict[str, Any]:
    return {
        **NEW_TODO_FORM,
        "todo_list": str(todo_list("Work").pk),
        "tags": [str(tag("urgent").pk), str(tag("ideas").pk)],
    }


# --- scenarios -----------------------------------------------------------------------------


def list_(s: Session) -> None:
    s.get("/todos/")


def list_page2(s: Session) -> None:
    response = s.get("/todos/?page=2")
    if "#60" not in response.content.decode():
        raise ScenarioProblem("page 2 does not show the 60th todo")


def detail(s: Session) -> None:
    s.get(f"/todos/{todo_where(tags__isnull=False).pk}/")


def create(s: Session) -> None:
    s.login("alice")
    response = s.post("/todos/new/", data=new_todo_form(), expect=302)
    created_pk(response)


def update(s: Session) -> None:
    todo = todo_where(tags__isnull=False, priority__lt=3, due_date__isnull=False)
    data = form_data(todo, title=f"{todo.title} (edited)", notes="Edited.", priority="3")
    s.post(f"/todos/{todo.pk}/edit/", data=data, expect=302)


def delete(s: Session) -> None:
    s.post(f"/todos/{todo_where(tags__isnull=False).pk}/delete/", expect=302)


def complete(s: Session) -> None:
    s.post(f"/todos/{todo_where(done=False).pk}/complete/", expect=302)


def api_list(s: Session) -> None:
    response = s.get("/api/todos/")
    if len(response.json()) != 60:
        raise ScenarioProblem("the API did not list 60 todos")


def api_create(s: Session) -> None:
    payload = {
        "title": "Created through the API",
        "priority": 3,
        "estimate_hours": "1.25",
        "due_date": "2025-05-01",
        "todo_list": todo_list("Home").pk,
        "tags": ["urgent", "quick-win"],
    }
    response = s.post(
        "/api/todos/", data=json.dumps(payload), content_type="application/json", expect=201
    )
    if not isinstance(response.json().get("id"), int):
        raise ScenarioProblem("no new id in the 201 response")


def api_put(s: Session) -> None:
    todo = todo_where(done=False, priority__lt=3)
    payload = {"title": "Replaced through the API", "done": True, "priority": 3, "notes": "PUT"}
    s.request(
        "put",
        f"/api/todos/{todo.pk}/",
        data=json.dumps(payload),
        content_type="application/json",
        expect=200,
    )


def api_patch(s: Session) -> None:
    todo = todo_where(done=False, priority__lt=3, owner__isnull=False)
    payload = {"done": True, "priority": 3}
    s.request(
        "patch",
        f"/api/todos/{todo.pk}/",
        data=json.dumps(payload),
        content_type="application/json",
        expect=200,
    )


def api_delete(s: Session) -> None:
    s.request("delete", f"/api/todos/{todo_where(tags__isnull=False).pk}/", expect=204)


def upload(s: Session) -> None:
    todo = todo_where(done=False)
    upload = SimpleUploadedFile(
        "notes.txt", b"A small file from the scenario suite.\n", content_type="text/plain"
    )
    s.post(f"/todos/{todo.pk}/attach/", data={"file": upload, "note": "scenario"}, expect=302)


def dashboard(s: Session) -> None:
    s.login("bob")
    response = s.get("/dashboard/")
    if "#2" not in response.content.decode():
        raise ScenarioProblem("bob's dashboard does not list his todos")


def basic_auth(s: Session) -> None:
    response = s.get("/api/whoami/", HTTP_AUTHORIZATION=f"Basic {BASIC_TOKEN}")
    if response.json().get("username") != "bob":
        raise ScenarioProblem("Basic auth did not identify bob")


def session(s: Session) -> None:
    errands = todo_list("Errands")
    s.post("/session/favourite/", data={"list_id": str(errands.pk)}, expect=302, record=False)
    response = s.get("/session/")
    if "Favourite list: Errands" not in response.content.decode():
        raise ScenarioProblem("the session does not hold the favourite list")


def owner_fk(s: Session) -> None:
    s.get(f"/todos/{todo_where(owner=user('bob')).pk}/owner/")


def stats(s: Session) -> None:
    s.get("/stats/")


def report(s: Session) -> None:
    s.get("/report/")


def weather(s: Session) -> None:
    if "18.5" not in s.get("/weather/").content.decode():
        raise ScenarioProblem("the weather page did not show the stub's answer")


def quote(s: Session) -> None:
    if "Alan Kay" not in s.get("/quote/").content.decode():
        raise ScenarioProblem("the quote page did not show the stub's answer")


def share_mail(s: Session) -> None:
    sent = len(mail.outbox)
    todo = todo_where(notes__gt="")
    s.post(f"/todos/{todo.pk}/share/", data={"email": "friend@example.com"}, expect=302)
    if len(mail.outbox) != sent + 2:
        raise ScenarioProblem("sharing did not send two mails")


def renew(s: Session) -> None:
    due = timezone.localdate() + dt.timedelta(weeks=1)
    s.post(f"/todos/{todo_where().pk}/renew/", data={"due_date": due.isoformat()}, expect=302)


def m2m_add(s: Session) -> None:
    todo = todo_where(tags__isnull=True)
    s.post(f"/todos/{todo.pk}/tags/add/", data={"tag": ["urgent", "waiting"]}, expect=302)


def project(s: Session) -> None:
    s.get(f"/projects/{PROJECT_ID}/")


def not_found(s: Session) -> None:
    s.get("/todos/99999/", expect=404)


def forbidden(s: Session) -> None:
    s.login("bob")
    s.get(f"/todos/{todo_where(owner=user('alice')).pk}/secret/", expect=403)


def invalid_form(s: Session) -> None:
    data = new_todo_form()
    del data["title"]
    response = s.post("/todos/new/", data=data, expect=200)
    if "This field is required." not in response.content.decode():
        raise ScenarioProblem("the invalid form was not re-rendered with its error")


def flow(s: Session) -> None:
    s.login("alice")
    response = s.post("/todos/new/", data=new_todo_form(), expect=302)
    pk = created_pk(response)
    data = {**new_todo_form(), "title": "Write the scenario suite, then edit it", "priority": "2"}
    s.post(f"/todos/{pk}/edit/", data=data, expect=302)


# --- the catalog app: relations the todos app lacks ---------------------------------------


def category_tree(s: Session) -> None:
    """A self-referencing foreign key (ancestors walked up) and a count."""
    s.get("/catalog/categories/editors/")


def digital_product(s: Session) -> None:
    """Multi-table inheritance: the child row and its parent row."""
    from catalog.models import DigitalProduct

    s.get(f"/catalog/digital/{DigitalProduct.objects.get(sku='ED-01').pk}/")


def product_suppliers(s: Session) -> None:
    """An explicit M2M through model, and a foreign key to a non-primary field."""
    s.get("/catalog/products/KB-01/suppliers/")


def product_reviews(s: Session) -> None:
    """A generic foreign key and an aggregate over it."""
    s.get("/catalog/products/KB-01/reviews/")


def add_supply(s: Session) -> None:
    s.post(
        "/catalog/products/ED-01/suppliers/add/",
        expect=201,
        data=json.dumps({"supplier": "Initech", "lead_days": 9}),
        content_type="application/json",
    )


def review_product(s: Session) -> None:
    s.post(
        "/catalog/products/ED-01/reviews/add/",
        expect=201,
        data=json.dumps({"stars": 2, "text": "Meh"}),
        content_type="application/json",
    )


SCENARIOS: dict[str, Callable[[Session], None]] = {
    "list": list_,
    "list_page2": list_page2,
    "detail": detail,
    "create": create,
    "update": update,
    "delete": delete,
    "complete": complete,
    "api_list": api_list,
    "api_create": api_create,
    "api_put": api_put,
    "api_patch": api_patch,
    "api_delete": api_delete,
    "upload": upload,
    "dashboard": dashboard,
    "basic_auth": basic_auth,
    "session": session,
    "owner_fk": owner_fk,
    "stats": stats,
    "report": report,
    "weather": weather,
    "quote": quote,
    "mail": share_mail,
    "renew": renew,
    "m2m_add": m2m_add,
    "project": project,
    "not_found": not_found,
    "forbidden": forbidden,
    "invalid_form": invalid_form,
    "flow": flow,
    "category_tree": category_tree,
    "digital_product": digital_product,
    "product_suppliers": product_suppliers,
    "product_reviews": product_reviews,
    "add_supply": add_supply,
    "review_product": review_product,
}


def browsing_session(s: Session) -> None:
    """One user's session on the example project, as a person would click through it:
    the source of the generated regression suite (``kolo_generate --suite``)."""
    from catalog.models import DigitalProduct

    s.get("/todos/")
    s.get("/todos/?page=2")
    s.get(f"/todos/{todo_where(tags__isnull=False).pk}/")
    s.get(f"/todos/{todo_where(tags__isnull=True).pk}/")
    s.get("/todos/99999/", expect=404)
    s.get("/accounts/login/")
    login = {"username": "alice", "password": PASSWORDS["alice"]}
    s.post("/accounts/login/", data=login, expect=302)
    s.get("/todos/new/")
    invalid = new_todo_form()
    del invalid["title"]
    s.post("/todos/new/", data=invalid, expect=200)
    pk = created_pk(s.post("/todos/new/", data=new_todo_form(), expect=302))
    s.get(f"/todos/{pk}/")
    s.get(f"/todos/{pk}/edit/")
    edited = {**new_todo_form(), "title": "Write the suite, then edit it", "priority": "2"}
    s.post(f"/todos/{pk}/edit/", data=edited, expect=302)
    s.post(f"/todos/{pk}/complete/", expect=302)
    s.post(
        f"/todos/{todo_where(tags__isnull=True).pk}/tags/add/", data={"tag": ["urgent"]}, expect=302
    )
    s.get("/dashboard/")
    s.get("/stats/")
    s.get("/report/")
    s.get("/weather/")
    s.get("/api/todos/")
    payload = {"title": "From the API", "priority": 1, "todo_list": todo_list("Home").pk}
    s.post("/api/todos/", data=json.dumps(payload), content_type="application/json", expect=201)
    s.get("/api/whoami/", HTTP_AUTHORIZATION=f"Basic {BASIC_TOKEN}")
    s.get("/catalog/categories/editors/")
    s.get(f"/catalog/digital/{DigitalProduct.objects.get(sku='ED-01').pk}/")
    s.get("/catalog/products/KB-01/suppliers/")
    s.get("/catalog/products/KB-01/reviews/")
    s.get("/todos/")


# Values no generated file may contain, whatever the scenario.
FIXED_SECRETS = {*PASSWORDS.values(), BASIC_TOKEN}
