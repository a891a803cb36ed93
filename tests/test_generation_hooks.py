"""Each generation hook of KOLO_DJANGO is called and changes the code as
documented; each broken hook gives a one-line error (command) or a check error."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.checks import Tags, run_checks
from django.core.management import CommandError, call_command

from kolo_django import storage
from kolo_django.generation.api import GenerationError, generate

EXAMPLE = Path(__file__).resolve().parent.parent / "example_project"
CALLS: list[str] = []


def counting_processor(context: dict[str, Any]) -> dict[str, Any]:
    CALLS.append(context["class_name"])
    return {"class_name": "Counted" + context["class_name"]}


def sees_earlier_processor(context: dict[str, Any]) -> dict[str, Any]:
    return {"test_name": "test_after_" + context["class_name"].lower()}


def raising_processor(context: dict[str, Any]) -> dict[str, Any]:
    raise ValueError("no ticket number")


def list_processor(context: dict[str, Any]) -> Any:
    return ["not", "a", "dict"]


NOT_CALLABLE = 42


@pytest.fixture
def detail_trace(client: Any, seeded: None, traces: Any) -> dict[str, Any]:
    from todos.models import Todo

    # Ids differ between databases (PostgreSQL sequences are not reset between tests).
    pk = Todo.objects.order_by("pk").values_list("pk", flat=True)[2]
    assert client.get(f"/todos/{pk}/").status_code == 200
    return storage.load(traces.get().id)


@pytest.fixture
def create_trace(client: Any, seeded: None, traces: Any) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username="alice"))
    traces.all().delete()
    from todos.models import TodoList

    todo_list = TodoList.objects.order_by("pk")[1].pk
    response = client.post(
        "/todos/new/",
        {"title": "Hooked", "priority": 3, "estimate_hours": "1", "todo_list": todo_list},
    )
    assert response.status_code == 302
    return storage.load(traces.get().id)


def test_factories_create_seed_rows(detail_trace: dict[str, Any]) -> None:
    source, _ = generate(
        [detail_trace],
        style="unittest",
        factories=[
            {"path": "todos.factories.TodoFactory", "pk": True},
            {"path": "todos.factories.TodoListFactory"},
        ],
    )
    assert "from todos.factories import TodoFactory, TodoListFactory" in source
    assert "TodoFactory.create(" in source and "TodoListFactory.create(" in source
    # pk=True keeps the recorded id of the todo the URL names; the list's is left to the factory.
    pk = detail_trace["request"]["resolver"]["kwargs"]["pk"]
    assert f"id={pk}," in source.split("TodoFactory.create(")[1].split(")")[0]
    assert "id=" not in source.split("TodoListFactory.create(")[1].split(")")[0]
    # A value the factory declares itself (done = False, priority = 2) is not passed again.
    todo_args = source.split("TodoFactory.create(")[1].split(")\n")[0]
    assert "done=False" not in todo_args


def test_without_factories_rows_use_the_manager(detail_trace: dict[str, Any]) -> None:
    source, _ = generate([detail_trace], style="unittest")
    assert "Factory" not in source
    assert "Todo.objects.create(" in source


def test_field_parser_renders_custom_values(detail_trace: dict[str, Any]) -> None:
    plain, _ = generate([detail_trace], style="unittest")
    parsed, _ = generate(
        [detail_trace],
        style="unittest",
        parsers={"todos.fields.ColorField": "todos.generation.parse_color"},
    )
    assert 'color="#' in plain and "Color(" not in plain
    assert "color=Color(" in parsed and "from todos.fields import Color" in parsed


def test_processors_run_in_order_after_builtins(detail_trace: dict[str, Any]) -> None:
    CALLS.clear()
    source, context = generate(
        [detail_trace],
        style="unittest",
        processors=[f"{__name__}.counting_processor", f"{__name__}.sees_earlier_processor"],
    )
    assert CALLS == ["TodoDetailTests"]
    assert "class CountedTodoDetailTests(TestCase):" in source
    assert "def test_after_countedtododetailtests(self):" in source
    assert context["class_name"] == "CountedTodoDetailTests"


def test_custom_template_extends_a_builtin(detail_trace: dict[str, Any], tmp_path: Path) -> None:
    template = tmp_path / "team.py.j2"
    template.write_text(
        '{% extends "kolo_django/pytest.py.j2" %}\n{% block header %}\n"""Team header."""\n{% endblock %}\n'
    )
    source, _ = generate([detail_trace], style="pytest", template=str(template))
    assert source.startswith('"""Team header."""')
    assert "@pytest.mark.django_db" in source


def test_request_factory_template(create_trace: dict[str, Any]) -> None:
    source, _ = generate([create_trace], style="unittest", template="request_factory")
    assert "request = RequestFactory().post(" in source
    assert "match = resolve(request.path_info)" in source
    assert "self.client" not in source


def test_time_backends_and_formatter(detail_trace: dict[str, Any]) -> None:
    frozen, _ = generate([detail_trace], style="unittest", time_backend="freezegun")
    assert "from freezegun import freeze_time" in frozen and "@freeze_time(" in frozen
    unfrozen, _ = generate([detail_trace], style="unittest", time_backend="none", formatter="none")
    assert "time_machine" not in unfrozen and "freeze_time" not in unfrozen
    compile(unfrozen, "generated.py", "exec")


def test_settings_drive_generation(detail_trace: dict[str, Any], settings: Any) -> None:
    settings.KOLO_DJANGO = {
        **settings.KOLO_DJANGO,
        "FACTORIES": [{"path": "todos.factories.TodoFactory", "pk": True}],
        "TRACE_PROCESSORS": [f"{__name__}.counting_processor"],
        "TEST_STYLE": "pytest",
    }
    source, _ = generate([detail_trace])
    assert "TodoFactory.create(" in source
    assert "@pytest.mark.django_db" in source


# --- errors: a one-line message, never a traceback -------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"factories": [{"path": "todos.factories.Missing"}]},
            "FACTORIES: 'todos.factories.Missing' does not import",
        ),
        ({"factories": [{"path": "todos.models.Todo"}]}, "is not a factory_boy model factory"),
        (
            {"parsers": {"todos.fields.ColorField": "todos.generation.nope"}},
            "FIELD_PARSERS: 'todos.generation.nope' does not import",
        ),
        (
            {"parsers": {"todos.fields.Nope": "todos.generation.parse_color"}},
            "FIELD_PARSERS: field 'todos.fields.Nope' does not import",
        ),
        ({"processors": [f"{__name__}.NOT_CALLABLE"]}, "is not callable (it is int)"),
        (
            {"processors": [f"{__name__}.raising_processor"]},
            "trace processor raising_processor raised ValueError: no ticket number",
        ),
        (
            {"processors": [f"{__name__}.list_processor"]},
            "trace processor list_processor returned list, not a dict",
        ),
        ({"template": "/nowhere/missing.py.j2"}, "template /nowhere/missing.py.j2 does not exist"),
    ],
)
def test_broken_hooks_raise_one_line(
    detail_trace: dict[str, Any], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(GenerationError) as info:
        generate([detail_trace], style="unittest", **kwargs)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_template_syntax_error_names_file_and_line(
    detail_trace: dict[str, Any], tmp_path: Path
) -> None:
    template = tmp_path / "broken.py.j2"
    template.write_text(
        '{% extends "kolo_django/unittest.py.j2" %}\n\n{% block header %}\n{% if %}\n{% endblock %}\n'
    )
    with pytest.raises(GenerationError) as info:
        generate([detail_trace], style="unittest", template=str(template))
    assert str(info.value).startswith(f"template {template}, line 4:")


def test_command_reports_hook_errors(detail_trace: dict[str, Any], settings: Any) -> None:
    settings.KOLO_DJANGO = {
        **settings.KOLO_DJANGO,
        "TRACE_PROCESSORS": [f"{__name__}.raising_processor"],
    }
    with pytest.raises(CommandError, match="trace processor raising_processor raised ValueError"):
        call_command(
            "kolo_generate",
            detail_trace["id"],
            "--style",
            "unittest",
            stdout=StringIO(),
            stderr=StringIO(),
        )


@pytest.mark.parametrize(
    ("setting", "value", "check_id", "message"),
    [
        ("FACTORIES", [{"path": "todos.factories.Missing"}], "kolo_django.E004", "does not import"),
        (
            "FACTORIES",
            [{"path": "todos.models.Todo"}],
            "kolo_django.E004",
            "not a factory_boy model factory",
        ),
        (
            "FIELD_PARSERS",
            {"todos.fields.ColorField": f"{__name__}.NOT_CALLABLE"},
            "kolo_django.E004",
            "is not callable",
        ),
        ("TRACE_PROCESSORS", ["no.such.module"], "kolo_django.E004", "does not import"),
        ("TEST_TEMPLATE", "/nowhere/t.py.j2", "kolo_django.E005", "does not exist"),
        ("FACTORIES", ["todos.factories.TodoFactory"], "kolo_django.E002", "must be dicts"),
        (
            "TIME_BACKEND",
            "sundial",
            "kolo_django.E002",
            "must be one of time-machine, freezegun, none",
        ),
        ("HTTP_MOCK_BACKEND", "mockery", "kolo_django.E002", "must be one of httpretty, responses"),
        ("TEST_STYLE", "nose", "kolo_django.E002", "must be one of unittest, pytest, auto"),
    ],
)
def test_system_checks_report_broken_hooks(
    settings: Any, setting: str, value: Any, check_id: str, message: str
) -> None:
    settings.KOLO_DJANGO = {**settings.KOLO_DJANGO, setting: value}
    found = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == check_id]
    assert any(message in m.msg for m in found), [m.msg for m in found]


def test_template_syntax_error_is_a_check_error(settings: Any, tmp_path: Path) -> None:
    template = tmp_path / "broken.py.j2"
    template.write_text("line one\n{% for %}\n")
    settings.KOLO_DJANGO = {**settings.KOLO_DJANGO, "TEST_TEMPLATE": str(template)}
    found = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "kolo_django.E005"]
    assert found and found[0].msg.startswith(f"template {template}, line 2:")


def test_example_hook_settings_pass_checks(settings: Any) -> None:
    settings.KOLO_DJANGO = {
        **settings.KOLO_DJANGO,
        "FACTORIES": [{"path": "todos.factories.TodoFactory", "pk": True}],
        "FIELD_PARSERS": {"todos.fields.ColorField": "todos.generation.parse_color"},
        "TRACE_PROCESSORS": ["todos.generation.recorded_prefix"],
        "TEST_TEMPLATE": str(EXAMPLE / "kolo_templates" / "unittest_team.py.j2"),
    }
    assert [
        m for m in run_checks(tags=[Tags.compatibility]) if m.id.startswith("kolo_django.E")
    ] == []


def broken_parser(value: Any, field: Any) -> Any:
    raise ValueError("not a colour")


def test_field_parser_that_raises_is_one_line(detail_trace: dict[str, Any]) -> None:
    with pytest.raises(GenerationError) as info:
        generate(
            [detail_trace],
            style="unittest",
            parsers={"todos.fields.ColorField": f"{__name__}.broken_parser"},
        )
    assert (
        str(info.value)
        == "field parser broken_parser raised ValueError on TodoList.color: not a colour"
    )


def test_builtin_template_name_passes_checks(settings: Any) -> None:
    settings.KOLO_DJANGO = {**settings.KOLO_DJANGO, "TEST_TEMPLATE": "request_factory"}
    assert not [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "kolo_django.E005"]


def test_template_base_decides_imports_whatever_the_style(detail_trace: dict[str, Any]) -> None:
    team = EXAMPLE / "kolo_templates" / "unittest_team.py.j2"
    source, _ = generate([detail_trace], style="pytest", template=str(team))
    assert "from django.test import TestCase" in source
    assert "import pytest" not in source
    compile(source, "generated.py", "exec")
