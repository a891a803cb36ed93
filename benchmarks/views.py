"""Views for the benchmarks.

``heavy`` stands for a busier page than the example's list: one outbound HTTP
call, about 30 queries (an N+1 loop, a count and an exists) and about 300
calls of project code, all with locals worth recording.

``queries`` runs exactly ``n`` primary-key lookups on consecutive todos from
``start``: the trace behind the generation scaling table.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import requests
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from todos.models import Tag, Todo, TodoList

HEAVY_TODOS = 25
REFERENCE_DAY = dt.date(2025, 3, 1)


def heavy(request: HttpRequest) -> JsonResponse:
    forecast = fetch_forecast()
    lists = {todo_list.pk: todo_list for todo_list in TodoList.objects.all()}
    tags = {tag.slug: tag for tag in Tag.objects.all()}
    todos = list(Todo.objects.order_by("id")[:HEAVY_TODOS])
    summaries = [summarise(todo, lists, forecast) for todo in todos]
    open_count = Todo.objects.filter(done=False).count()
    has_urgent = Todo.objects.filter(tags__slug="urgent").exists()
    return JsonResponse(
        {
            "forecast": forecast.get("city"),
            "lists": sorted(str(todo_list) for todo_list in lists.values()),
            "tags": sorted(tags),
            "open": open_count,
            "urgent": has_urgent,
            "todos": summaries,
            "total_score": round(sum(summary["score"] for summary in summaries), 3),
        }
    )


def fetch_forecast() -> dict[str, Any]:
    response = requests.get(f"{settings.KOLO_BENCH_API_URL}/forecast", timeout=5)
    response.raise_for_status()
    return response.json()


def summarise(todo: Todo, lists: dict[int, TodoList], forecast: dict[str, Any]) -> dict[str, Any]:
    # todo.tags.all(): one query a todo, the N+1 a real page often has.
    tag_slugs = [tag.slug for tag in todo.tags.all()]
    return {
        "id": todo.pk,
        "title": title_words(todo.title),
        "list": lists[todo.todo_list_id].name,
        "tags": tag_slugs,
        "score": score(todo, tag_slugs, forecast),
    }


def title_words(title: str) -> list[str]:
    return [normalise(word) for word in title.split()]


def normalise(word: str) -> str:
    return word.strip("#").lower()


def score(todo: Todo, tag_slugs: list[str], forecast: dict[str, Any]) -> float:
    weights = [
        priority_weight(todo.priority),
        due_weight(todo.due_date),
        estimate_weight(todo.estimate_hours),
        tag_weight(tag_slugs),
        0.2 if forecast.get("rain") else 0.0,
    ]
    return round(clamp(sum(weights)), 3)


def priority_weight(priority: int) -> float:
    return {1: 0.5, 2: 1.0, 3: 2.0}.get(priority, 1.0)


def due_weight(due: dt.date | None) -> float:
    if due is None:
        return 0.0
    return 1.0 / (1 + abs((due - REFERENCE_DAY).days))


def estimate_weight(hours: Decimal) -> float:
    return float(hours) / 10


def tag_weight(tag_slugs: list[str]) -> float:
    return len(tag_slugs) * 0.1 + (0.5 if "urgent" in tag_slugs else 0.0)


def clamp(value: float) -> float:
    return max(0.0, min(value, 10.0))


def queries(request: HttpRequest) -> JsonResponse:
    n = int(request.GET.get("n", "100"))
    start = int(request.GET.get("start", "1"))
    titles = 0
    for pk in range(start, start + n):
        titles += len(Todo.objects.get(pk=pk).title)
    return JsonResponse({"n": n, "title_chars": titles})
