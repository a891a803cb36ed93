"""Fill the database with deterministic example data.

Re-running is safe: the todos app's tables are emptied first and the two
users are updated in place.
"""

from __future__ import annotations

import datetime
import hashlib
import random
import uuid
from decimal import Decimal
from typing import Any

from catalog.seed import seed_catalog
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from todos.models import Attachment, Project, Tag, Todo, TodoList

# Fixed dates and ids keep the data (and URLs) identical across runs.
BASE_DATE = datetime.date(2025, 3, 3)
LISTS = [("Home", "#336699"), ("Work", "#cc3300"), ("Errands", "#2e8b57")]
TAGS = [
    ("Urgent", "urgent"),
    ("Quick win", "quick-win"),
    ("Waiting", "waiting"),
    ("Ideas", "ideas"),
]
PROJECTS = [
    (uuid.UUID("6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"), "Garden shed", Decimal("1500.00")),
    (uuid.UUID("0b9a8c7d-6e5f-4a3b-9c2d-1e0f2a3b4c5d"), "Website relaunch", Decimal("12000.50")),
]
VERBS = ["Buy", "Fix", "Call", "Write", "Review", "Plan", "Clean", "Book"]
NOUNS = [
    "groceries",
    "the bike",
    "the dentist",
    "a report",
    "the budget",
    "a holiday",
    "the garage",
    "tickets",
]


class Command(BaseCommand):
    help = "Replace the todos app's data with a deterministic example data set."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--todos", type=int, default=60, help="number of todos (default 60)")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        rng = random.Random(42)
        todo_count: int = options["todos"]

        for model in (Attachment, Todo, Tag, TodoList, Project):
            model.objects.all().delete()

        alice = self._user("alice", "alice-password", is_staff=True, is_superuser=True)
        bob = self._user("bob", "bob-password", is_staff=False, is_superuser=False)
        owners = [alice, bob, None]

        lists = [TodoList.objects.create(name=name, color=color) for name, color in LISTS]
        tags = [Tag.objects.create(name=name, slug=slug) for name, slug in TAGS]

        done_count = 0
        for index in range(todo_count):
            done = index % 4 == 0
            done_count += done
            todo = Todo.objects.create(
                title=f"{rng.choice(VERBS)} {rng.choice(NOUNS)} #{index + 1}",
                notes="" if index % 3 else f"Seeded note for todo {index + 1}.",
                done=done,
                priority=rng.choice(Todo.Priority.values),
                estimate_hours=Decimal(rng.randint(0, 40)) / 4,
                due_date=BASE_DATE + datetime.timedelta(days=rng.randint(0, 60))
                if index % 5
                else None,
                remind_at=datetime.time(9 + index % 8, 30) if index % 2 else None,
                time_spent=datetime.timedelta(minutes=15 * rng.randint(1, 12)) if done else None,
                metadata={
                    "source": "seed",
                    "index": index,
                    "labels": rng.sample(["a", "b", "c"], 2),
                },
                owner=owners[index % len(owners)],
                todo_list=lists[index % len(lists)],
            )
            todo.tags.set(rng.sample(tags, rng.randint(0, 2)))

        for project_id, name, budget in PROJECTS:
            Project.objects.create(
                id=project_id,
                name=name,
                budget=budget,
                starts_on=BASE_DATE,
                checksum=hashlib.sha256(name.encode()).digest(),
                owner=alice,
            )

        catalog = seed_catalog()
        self.stdout.write(
            f"Seeded 2 users (alice, bob), {len(lists)} lists, {len(tags)} tags, "
            f"{todo_count} todos ({done_count} done), {len(PROJECTS)} projects; catalog: {catalog}."
        )

    def _user(self, username: str, password: str, **flags: bool) -> Any:
        user, _ = get_user_model().objects.update_or_create(
            username=username, defaults={"email": f"{username}@example.com", **flags}
        )
        user.set_password(password)
        user.save()
        return user
