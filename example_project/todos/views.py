from __future__ import annotations

import mimetypes
import uuid

import httpx
import requests
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage, send_mail
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .forms import AttachmentForm, RenewTodoForm, ShareForm, TodoForm
from .models import Attachment, Project, Tag, Todo, TodoList

TODOS_PER_PAGE = 50


@require_GET
def todo_list(request: HttpRequest) -> HttpResponse:
    todos = Todo.objects.select_related("todo_list").prefetch_related("tags")
    tag_slugs = request.GET.getlist("tag")
    if tag_slugs:
        # distinct(): a todo carrying several of the requested tags would repeat.
        todos = todos.filter(tags__slug__in=tag_slugs).distinct()
    page = Paginator(todos, TODOS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "open_count": todos.filter(done=False).count(),
        "tags": Tag.objects.all(),
        "selected_tags": tag_slugs,
    }
    return render(request, "todos/todo_list.html", context)


@require_GET
def todo_detail(request: HttpRequest, pk: int) -> HttpResponse:
    todo = get_object_or_404(Todo.objects.select_related("todo_list"), pk=pk)
    context = {
        "todo": todo,
        "attachment_form": AttachmentForm(),
        "share_form": ShareForm(),
        "all_tags": Tag.objects.all(),
    }
    return render(request, "todos/todo_detail.html", context)


@require_POST
def todo_complete(request: HttpRequest, pk: int) -> HttpResponse:
    todo = get_object_or_404(Todo, pk=pk)
    todo.done = True
    todo.save()
    messages.success(request, f"Completed “{todo.title}”.")
    return redirect("todo-list")


@require_http_methods(["GET", "POST"])
def todo_create(request: HttpRequest) -> HttpResponse:
    form = TodoForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        todo = form.save(commit=False)
        if request.user.is_authenticated:
            todo.owner = request.user
        todo.save()
        form.save_m2m()
        messages.success(request, "Todo created.")
        return redirect(todo)
    return render(request, "todos/todo_form.html", {"form": form})


@require_http_methods(["GET", "POST"])
def todo_update(request: HttpRequest, pk: int) -> HttpResponse:
    todo = get_object_or_404(Todo, pk=pk)
    form = TodoForm(request.POST or None, instance=todo)
    if request.method == "POST" and form.is_valid():
        todo = form.save()
        messages.success(request, "Todo updated.")
        return redirect(todo)
    return render(request, "todos/todo_form.html", {"form": form, "todo": todo})


@require_POST
def todo_delete(request: HttpRequest, pk: int) -> HttpResponse:
    todo = get_object_or_404(Todo, pk=pk)
    todo.delete()
    messages.success(request, f"Deleted “{todo.title}”.")
    return redirect("todo-list")


@require_http_methods(["GET", "POST"])
def todo_renew(request: HttpRequest, pk: int) -> HttpResponse:
    todo = get_object_or_404(Todo, pk=pk)
    if request.method == "POST":
        form = RenewTodoForm(request.POST)
        if form.is_valid():
            todo.due_date = form.cleaned_data["due_date"]
            todo.save(update_fields=["due_date"])
            return redirect(todo)
    else:
        form = RenewTodoForm(initial={"due_date": todo.due_date or timezone.localdate()})
    return render(request, "todos/todo_renew.html", {"form": form, "todo": todo})


@require_POST
def todo_add_tag(request: HttpRequest, pk: int) -> HttpResponse:
    todo = get_object_or_404(Todo, pk=pk)
    slugs = request.POST.getlist("tag")
    tags = list(Tag.objects.filter(slug__in=slugs))
    todo.tags.add(*tags)
    unknown = sorted(set(slugs) - {tag.slug for tag in tags})
    if unknown:
        messages.warning(request, f"Unknown tags ignored: {', '.join(unknown)}")
    return redirect(todo)


@require_POST
def todo_attach(request: HttpRequest, pk: int) -> HttpResponse:
    todo = get_object_or_404(Todo, pk=pk)
    form = AttachmentForm(request.POST, request.FILES)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text())
    upload = form.cleaned_data["file"]
    content_type = (
        upload.content_type or mimetypes.guess_type(upload.name)[0] or "application/octet-stream"
    )
    attachment = Attachment.objects.create(
        todo=todo, file=upload, content_type=content_type, size=upload.size
    )
    note = form.cleaned_data["note"]
    messages.success(request, f"Attached {attachment.file.name}" + (f": {note}" if note else "."))
    return redirect(todo)


@require_POST
def todo_share(request: HttpRequest, pk: int) -> HttpResponse:
    todo = get_object_or_404(Todo, pk=pk)
    form = ShareForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text())
    email = form.cleaned_data["email"]
    subject = f"Todo: {todo.title}"
    link = request.build_absolute_uri(todo.get_absolute_url())
    body = f"Someone shared a todo with you:\n\n{todo.title}\n\n{link}\n"
    send_mail(subject, body, None, [email])
    # A second message carrying the todo as a text attachment.
    message = EmailMessage(subject, body, to=[email])
    message.attach("todo.txt", f"{todo.title}\n\n{todo.notes}\n", "text/plain")
    message.send()
    messages.success(request, f"Shared with {email}.")
    return redirect(todo)


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    todos = Todo.objects.filter(owner=request.user).select_related("todo_list")
    return render(request, "todos/dashboard.html", {"todos": todos})


@login_required
@require_GET
def todo_private(request: HttpRequest, pk: int) -> HttpResponse:
    todo = get_object_or_404(Todo, pk=pk)
    # Compare ids so the owner row is never fetched.
    if todo.owner_id != request.user.pk and not request.user.has_perm("todos.change_todo"):
        raise PermissionDenied("Only the owner may see this todo's private page.")
    return render(request, "todos/todo_private.html", {"todo": todo})


@require_GET
def stats(request: HttpRequest) -> HttpResponse:
    """Aggregate-only page: it must never instantiate a Todo."""
    open_todos = Todo.objects.filter(done=False)
    priority_labels = dict(Todo.Priority.choices)
    by_priority = (
        Todo.objects.values_list("priority").annotate(count=Count("id")).order_by("priority")
    )
    context = {
        "open_count": open_todos.count(),
        "done_count": Todo.objects.filter(done=True).count(),
        "has_overdue": open_todos.filter(due_date__lt=timezone.localdate()).exists(),
        "estimate_total": Todo.objects.aggregate(total=Sum("estimate_hours"))["total"] or 0,
        "by_priority": [
            (priority_labels.get(priority, priority), count) for priority, count in by_priority
        ],
    }
    return render(request, "todos/stats.html", context)


@require_GET
def report(request: HttpRequest) -> HttpResponse:
    qn = connection.ops.quote_name
    sql = (
        f"SELECT l.{qn('name')}, COUNT(t.{qn('id')}) "
        f"FROM {qn(TodoList._meta.db_table)} l "
        f"LEFT JOIN {qn(Todo._meta.db_table)} t "
        f"ON t.{qn(Todo._meta.get_field('todo_list').column)} = l.{qn('id')} "
        f"GROUP BY l.{qn('id')}, l.{qn('name')} "
        f"ORDER BY l.{qn('name')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql)
        rows = cursor.fetchall()
    return render(request, "todos/report.html", {"rows": rows})


@require_GET
def session_view(request: HttpRequest) -> HttpResponse:
    favourite_id = request.session.get("favourite_list")
    favourite = TodoList.objects.filter(pk=favourite_id).first() if favourite_id else None
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    context = {"favourite": favourite, "visits": visits, "lists": TodoList.objects.all()}
    return render(request, "todos/session.html", context)


@require_POST
def session_set(request: HttpRequest) -> HttpResponse:
    try:
        list_id = int(request.POST["list_id"])
    except (KeyError, ValueError):
        return HttpResponseBadRequest("list_id must be an integer")
    if not TodoList.objects.filter(pk=list_id).exists():
        return HttpResponseBadRequest("No such list")
    request.session["favourite_list"] = list_id
    return redirect("session-view")


@require_GET
def weather(request: HttpRequest) -> HttpResponse:
    try:
        response = requests.get(f"{settings.EXAMPLE_API_URL}/weather?city=Paris", timeout=5)
        response.raise_for_status()
        data = response.json()
    except requests.RequestException as exc:
        context = {"error": f"Weather service unavailable: {exc.__class__.__name__}"}
        return render(request, "todos/weather.html", context, status=502)
    return render(request, "todos/weather.html", {"weather": data})


@require_GET
def quote(request: HttpRequest) -> HttpResponse:
    try:
        response = httpx.get(f"{settings.EXAMPLE_API_URL}/quote", timeout=5)
        response.raise_for_status()
        data = response.json()
        # Tell the service which quote was shown; the echo confirms receipt.
        echo = httpx.post(
            f"{settings.EXAMPLE_API_URL}/echo",
            json={"event": "quote-shown", "author": data.get("author")},
            timeout=5,
        )
        echo.raise_for_status()
    except (httpx.HTTPError, ValueError) as exc:
        context = {"error": f"Quote service unavailable: {exc.__class__.__name__}"}
        return render(request, "todos/quote.html", context, status=502)
    return render(request, "todos/quote.html", {"quote": data})


@require_GET
def project_detail(request: HttpRequest, pk: uuid.UUID) -> HttpResponse:
    project = get_object_or_404(Project, pk=pk)
    return render(request, "todos/project_detail.html", {"project": project})


@require_GET
def todo_owner_id(request: HttpRequest, pk: int) -> HttpResponse:
    # Deliberately no select_related("owner"): only the raw owner_id is shown.
    todo = get_object_or_404(Todo, pk=pk)
    return render(request, "todos/todo_owner.html", {"todo": todo})
