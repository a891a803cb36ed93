"""View mutations a generated test of a write scenario must notice.

Each kind is one mutated copy of the project. An edit is (file in todos/, top-level
function, exact text, replacement); the text must occur once in that function. ``targets``
are the scenarios whose generated test must FAIL in the mutated project. ``CONTROLS`` are
read-only scenarios copied into every mutant project: they must still pass there, which
shows the mutated project itself is sound.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    description: str
    edits: list[tuple[str, str, str, str]]
    targets: list[str]


MUTATIONS: dict[str, Mutation] = {
    "no_write": Mutation(
        "drop the .save() / .delete() / tags.add() / send_mail()",
        [
            ("views.py", "todo_update", "todo = form.save()", "todo = form.save(commit=False)"),
            ("views.py", "todo_delete", "todo.delete()", "pass"),
            ("views.py", "todo_complete", "todo.save()", "pass"),
            ("views.py", "todo_add_tag", "todo.tags.add(*tags)", "pass"),
            ("views.py", "todo_share", "send_mail(subject, body, None, [email])", "pass"),
            ("api.py", "save_from_payload", "todo = form.save()", "todo = form.save(commit=False)"),
            ("api.py", "todo_item", "todo.delete()", "pass"),
        ],
        [
            "update",
            "delete",
            "complete",
            "m2m_add",
            "mail",
            "api_create",
            "api_put",
            "api_patch",
            "api_delete",
            "flow",
        ],
    ),
    "response": Mutation(
        "change the redirect target / the success status code",
        [
            ("views.py", "todo_create", "return redirect(todo)", 'return redirect("todo-list")'),
            ("views.py", "todo_update", "return redirect(todo)", 'return redirect("todo-list")'),
            ("views.py", "todo_delete", 'redirect("todo-list")', 'redirect("dashboard")'),
            ("views.py", "todo_complete", 'redirect("todo-list")', 'redirect("dashboard")'),
            ("views.py", "todo_add_tag", "return redirect(todo)", 'return redirect("todo-list")'),
            ("views.py", "todo_share", "return redirect(todo)", 'return redirect("todo-list")'),
            ("api.py", "todo_collection", "status=201", "status=200"),
            ("api.py", "todo_item", "HttpResponse(status=204)", "HttpResponse(status=200)"),
        ],
        [
            "create",
            "update",
            "delete",
            "complete",
            "m2m_add",
            "mail",
            "api_create",
            "api_delete",
            "flow",
        ],
    ),
    "value": Mutation(
        "write a different value (done, owner, priority, tags, mail recipient)",
        [
            ("views.py", "todo_complete", "todo.done = True", "todo.done = False"),
            ("views.py", "todo_create", "todo.owner = request.user", "todo.owner = None"),
            (
                "views.py",
                "todo_update",
                "todo = form.save()",
                "form.instance.priority = 1\n        todo = form.save()",
            ),
            (
                "views.py",
                "todo_add_tag",
                "Tag.objects.filter(slug__in=slugs)",
                "Tag.objects.exclude(slug__in=slugs)[:1]",
            ),
            (
                "views.py",
                "todo_share",
                "send_mail(subject, body, None, [email])",
                'send_mail(subject, body, None, ["someone-else@example.com"])',
            ),
            (
                "api.py",
                "save_from_payload",
                "data.update(payload)",
                'data.update(payload)\n    data["priority"] = 1',
            ),
        ],
        [
            "complete",
            "create",
            "update",
            "m2m_add",
            "mail",
            "api_create",
            "api_put",
            "api_patch",
            "flow",
        ],
    ),
}

CONTROLS = ["list", "detail", "project"]


def cases() -> list[tuple[str, str]]:
    return [
        (kind, scenario) for kind, mutation in MUTATIONS.items() for scenario in mutation.targets
    ]
