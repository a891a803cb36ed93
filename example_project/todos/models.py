from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

from .fields import ColorField


class TodoList(models.Model):
    name = models.CharField(max_length=100, unique=True)
    color = ColorField(default="#336699")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)
    slug = models.SlugField(max_length=50, unique=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class Todo(models.Model):
    class Priority(models.IntegerChoices):
        LOW = 1, "low"
        NORMAL = 2, "normal"
        HIGH = 3, "high"

    title = models.CharField(max_length=200)
    notes = models.TextField(blank=True)
    done = models.BooleanField(default=False)
    priority = models.IntegerField(choices=Priority.choices, default=Priority.NORMAL)
    estimate_hours = models.DecimalField(max_digits=6, decimal_places=2, default=0)
    due_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    remind_at = models.TimeField(null=True, blank=True)
    time_spent = models.DurationField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="todos",
    )
    todo_list = models.ForeignKey(TodoList, on_delete=models.CASCADE, related_name="todos")
    tags = models.ManyToManyField(Tag, blank=True, related_name="todos")

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("todo-detail", args=[self.pk])


class Attachment(models.Model):
    todo = models.ForeignKey(Todo, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="attachments/")
    content_type = models.CharField(max_length=100)
    size = models.IntegerField()
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.file.name


class Project(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100)
    budget = models.DecimalField(max_digits=10, decimal_places=2)
    starts_on = models.DateField()
    checksum = models.BinaryField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="projects",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("project-detail", args=[self.pk])
