"""factory_boy factories for the todos app, used by its tests and by
generated tests (``KOLO_DJANGO["FACTORIES"]``)."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from .models import Tag, Todo, TodoList


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")


class TodoListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TodoList

    name = factory.Sequence(lambda n: f"List {n}")
    color = "#336699"


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag

    name = factory.Sequence(lambda n: f"Tag {n}")
    slug = factory.Sequence(lambda n: f"tag-{n}")


class TodoFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Todo

    title = factory.Sequence(lambda n: f"Todo {n}")
    done = False
    priority = 2
    todo_list = factory.SubFactory(TodoListFactory)
