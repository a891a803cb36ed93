"""A small JSON API written with plain Django views (no DRF on purpose)."""

from __future__ import annotations

import base64
import binascii
import json
import logging
from typing import Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from .forms import ApiTodoForm
from .models import Tag, Todo

logger = logging.getLogger("todos")

PUT_REQUIRED_FIELDS = ("title", "done", "priority")


class BadPayload(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


def serialize_todo(request: HttpRequest, todo: Todo) -> dict[str, Any]:
    return {
        "id": todo.pk,
        "title": todo.title,
        "done": todo.done,
        "priority": todo.priority,
        "estimate_hours": str(todo.estimate_hours),
        "due_date": todo.due_date.isoformat() if todo.due_date else None,
        "created_at": todo.created_at.isoformat(),
        "todo_list": todo.todo_list_id,
        "tags": [tag.slug for tag in todo.tags.all()],
        "url": request.build_absolute_uri(todo.get_absolute_url()),
    }


def errors_response(errors: dict[str, list[str]], status: int = 400) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=status)


def not_found() -> JsonResponse:
    return JsonResponse({"error": "Not found."}, status=404)


def parse_json_object(request: HttpRequest) -> dict[str, Any]:
    try:
        payload = json.loads(request.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise BadPayload({"body": ["Request body must be valid JSON."]}) from None
    if not isinstance(payload, dict):
        raise BadPayload({"body": ["Request body must be a JSON object."]})
    return payload


def resolve_tags(payload: dict[str, Any]) -> list[Tag] | None:
    """Tags named by slug in the payload; None when the key is absent."""
    if "tags" not in payload:
        return None
    slugs = payload["tags"]
    if not isinstance(slugs, list) or not all(isinstance(slug, str) for slug in slugs):
        raise BadPayload({"tags": ["Must be a list of tag slugs."]})
    tags = list(Tag.objects.filter(slug__in=slugs))
    unknown = sorted(set(slugs) - {tag.slug for tag in tags})
    if unknown:
        raise BadPayload({"tags": [f"Unknown tag: {slug}" for slug in unknown]})
    return tags


def save_from_payload(payload: dict[str, Any], instance: Todo | None = None) -> Todo:
    """Validate through a ModelForm, merging the payload onto current values.

    For a new todo the "current values" are the model defaults, so omitted
    fields such as priority fall back to them instead of failing as required.
    """
    data = model_to_dict(instance or Todo(), fields=ApiTodoForm._meta.fields)
    data.update(payload)
    form = ApiTodoForm(data, instance=instance)
    tags = resolve_tags(payload)
    if not form.is_valid():
        raise BadPayload({field: list(messages) for field, messages in form.errors.items()})
    with transaction.atomic():
        todo = form.save()
        if tags is not None:
            todo.tags.set(tags)
    return todo


@csrf_exempt
@require_http_methods(["GET", "POST"])
def todo_collection(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        try:
            with transaction.atomic():
                todo = save_from_payload(parse_json_object(request))
                # Logged only once the row (and its tags) are really committed.
                transaction.on_commit(lambda: logger.warning("todo created: %s", todo.pk))
        except BadPayload as exc:
            return errors_response(exc.errors)
        return JsonResponse(serialize_todo(request, todo), status=201)

    todos = Todo.objects.prefetch_related("tags")
    done = request.GET.get("done")
    if done is not None:
        if done not in ("true", "false"):
            return errors_response({"done": ["Use done=true or done=false."]})
        todos = todos.filter(done=(done == "true"))
    return JsonResponse([serialize_todo(request, todo) for todo in todos], safe=False)


@csrf_exempt
@require_http_methods(["GET", "PUT", "PATCH", "DELETE"])
def todo_item(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        todo = Todo.objects.get(pk=pk)
    except Todo.DoesNotExist:
        return not_found()

    if request.method == "GET":
        return JsonResponse(serialize_todo(request, todo))
    if request.method == "DELETE":
        todo.delete()
        return HttpResponse(status=204)

    try:
        payload = parse_json_object(request)
        if request.method == "PUT":
            missing = [field for field in PUT_REQUIRED_FIELDS if field not in payload]
            if missing:
                raise BadPayload({field: ["This field is required."] for field in missing})
        todo = save_from_payload(payload, instance=todo)
    except BadPayload as exc:
        return errors_response(exc.errors)
    return JsonResponse(serialize_todo(request, todo))


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None


@csrf_exempt
@require_GET
def whoami(request: HttpRequest) -> JsonResponse:
    credentials = _basic_credentials(request)
    user = None
    if credentials is not None:
        username, password = credentials
        user = authenticate(request, username=username, password=password)
    if user is None:
        response = JsonResponse({"error": "Authentication required."}, status=401)
        response["WWW-Authenticate"] = 'Basic realm="todos", charset="UTF-8"'
        return response
    return JsonResponse({"username": user.get_username(), "todo_count": user.todos.count()})
